//! What a leader knows about one follower's log, and when it may send more.
//!
//! In: sends, acknowledgements, rejections and heartbeat responses for one
//! follower. Out: whether another AppendEntries may go now, from which index.
//!
//! As in etcd: `Probe` sends one append at a time until the follower's
//! match point is found (after an election or a rejection); `Replicate`
//! streams appends optimistically, at most `inflight_appends_max`
//! unacknowledged; `Snapshot` sends a snapshot one chunk at a time to a
//! follower whose next entry was compacted away, and `NeedsSnapshot` parks
//! it while the caller has not supplied the snapshot's bytes yet.

use crate::entry::LogPosition;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// `sent`: a probe is outstanding; cleared by any reply or heartbeat response.
    Probe {
        sent: bool,
    },
    /// Last index carried by each unacknowledged append, oldest first.
    Replicate {
        inflight: VecDeque<u64>,
    },
    NeedsSnapshot,
    /// Sending the snapshot ending at `last`: the follower holds its first
    /// `offset` bytes; `sent_round` is the heartbeat round current when the
    /// outstanding chunk left (None: nothing outstanding).
    Snapshot {
        last: LogPosition,
        offset: u64,
        sent_round: Option<u64>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Highest index known to be durable on the follower and equal to ours.
    pub(crate) match_index: u64,
    /// Next index to send.
    pub(crate) next_index: u64,
    pub(crate) state: ProgressState,
    /// Heard from since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// The latest heartbeat round this follower answered (for ReadIndex).
    pub(crate) round_acked: u64,
    /// The highest commit index sent to this follower, in an append or a
    /// heartbeat.
    pub(crate) commit_sent: u64,
}

impl Progress {
    pub(crate) fn new(next_index: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { sent: false },
            recent_active: false,
            commit_sent: 0,
            round_acked: 0,
        }
    }

    pub(crate) fn can_send(&self, last_index: u64, inflight_max: usize) -> bool {
        match &self.state {
            ProgressState::Probe { sent } => !sent,
            ProgressState::Replicate { inflight } => inflight.len() < inflight_max && self.next_index <= last_index,
            ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. } => false,
        }
    }

    /// Starts (over) sending the snapshot ending at `last`.
    pub(crate) fn start_snapshot(&mut self, last: LogPosition) {
        self.state = ProgressState::Snapshot { last, offset: 0, sent_round: None };
    }

    /// A chunk went out while heartbeat round `round` was current.
    pub(crate) fn on_chunk_sent(&mut self, round: u64) {
        let ProgressState::Snapshot { sent_round, .. } = &mut self.state else {
            panic!("chunks are sent only to a follower receiving a snapshot")
        };
        assert!(sent_round.is_none(), "one chunk in flight");
        *sent_round = Some(round);
    }

    /// The follower holds `received` bytes of the snapshot ending at `last`.
    /// Returns false if that is not the snapshot being sent.
    pub(crate) fn on_snapshot_received(&mut self, last: LogPosition, received: u64) -> bool {
        match &mut self.state {
            ProgressState::Snapshot { last: sending, offset, sent_round } if *sending == last => {
                *offset = received;
                *sent_round = None;
                true
            }
            _ => false,
        }
    }

    /// An append carrying entries up to `last_sent` went out.
    pub(crate) fn on_sent(&mut self, last_sent: u64, inflight_max: usize) {
        match &mut self.state {
            ProgressState::Probe { sent } => *sent = true,
            ProgressState::Replicate { inflight } => {
                assert!(inflight.len() < inflight_max, "sent beyond the in-flight window");
                assert!(last_sent >= self.next_index, "replicate sends only non-empty batches");
                inflight.push_back(last_sent);
                self.next_index = last_sent + 1;
            }
            ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. } => {
                panic!("appends are not sent to a follower that needs a snapshot")
            }
        }
    }

    /// The follower matches up to `match_index`. Returns whether the match
    /// point advanced (the only thing that can move the commit index).
    pub(crate) fn on_accepted(&mut self, match_index: u64) -> bool {
        let advanced = match_index > self.match_index;
        self.match_index = self.match_index.max(match_index);
        match &mut self.state {
            // A reply to our probe (not an older, delayed one) ends probing.
            ProgressState::Probe { .. } if match_index + 1 >= self.next_index => {
                self.next_index = match_index + 1;
                self.state = ProgressState::Replicate { inflight: VecDeque::new() };
            }
            // The follower installed the snapshot: it continues after it.
            ProgressState::Snapshot { last, .. } if match_index >= last.index => {
                self.next_index = match_index + 1;
                self.state = ProgressState::Replicate { inflight: VecDeque::new() };
            }
            ProgressState::Probe { .. } | ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. } => {}
            ProgressState::Replicate { inflight } => {
                while inflight.front().is_some_and(|&last| last <= match_index) {
                    inflight.pop_front();
                }
                self.next_index = self.next_index.max(match_index + 1);
            }
        }
        advanced
    }

    /// The follower lacks `prev_index`; `hinted_next` is where the leader
    /// guesses the logs agree. Returns false for a stale rejection, one that
    /// answers an append we have since superseded.
    pub(crate) fn on_rejected(&mut self, prev_index: u64, hinted_next: u64) -> bool {
        let current = match &self.state {
            ProgressState::Probe { .. } => self.next_index.checked_sub(1) == Some(prev_index),
            ProgressState::Replicate { .. } => prev_index > self.match_index,
            ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. } => false,
        };
        if !current {
            return false;
        }
        // Back off at least one entry and never below what is known to match.
        self.next_index = hinted_next.clamp(self.match_index + 1, prev_index.max(self.match_index + 1));
        self.state = ProgressState::Probe { sent: false };
        true
    }

    /// The follower is alive and answered heartbeat `round`: retry a
    /// probe; if the window is full assume the oldest append was lost so
    /// that replication cannot stall; resend a chunk that left before that
    /// round and is still unanswered.
    pub(crate) fn on_heartbeat_response(&mut self, inflight_max: usize, round: u64) {
        self.recent_active = true;
        match &mut self.state {
            ProgressState::Probe { sent } => *sent = false,
            ProgressState::Replicate { inflight } if inflight.len() >= inflight_max => {
                inflight.pop_front();
            }
            ProgressState::Snapshot { sent_round, .. } if sent_round.is_some_and(|sent| round > sent) => {
                *sent_round = None;
            }
            ProgressState::Replicate { .. } | ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time_then_replicates_within_the_window() {
        let mut p = Progress::new(5);
        assert!(p.can_send(4, 2), "a probe goes out even with nothing new to send");
        p.on_sent(4, 2);
        assert!(!p.can_send(10, 2), "one probe at a time");
        assert!(p.on_accepted(4));
        assert_eq!(p.state, ProgressState::Replicate { inflight: VecDeque::new() });
        p.on_sent(6, 2);
        p.on_sent(8, 2);
        assert!(!p.can_send(10, 2), "window of two is full");
        p.on_accepted(6);
        assert!(p.can_send(10, 2));
        assert_eq!((p.match_index, p.next_index), (6, 9));
    }

    #[test]
    fn stale_rejections_are_ignored_and_fresh_ones_back_off_within_bounds() {
        let mut p = Progress::new(5);
        p.on_accepted(4);
        p.on_sent(8, 4);
        assert!(!p.on_rejected(3, 1), "rejecting an index we know matches is stale");
        assert!(p.on_rejected(8, 2));
        assert_eq!((p.next_index, &p.state), (5, &ProgressState::Probe { sent: false }), "never below match + 1");
        assert!(!p.on_rejected(8, 2), "a second rejection of the old append is stale in probe");
    }

    #[test]
    fn heartbeat_response_frees_a_full_window() {
        let mut p = Progress::new(1);
        p.on_accepted(0);
        p.on_sent(1, 1);
        assert!(!p.can_send(2, 1));
        p.on_heartbeat_response(1, 0);
        assert!(p.can_send(2, 1));
    }

    #[test]
    fn a_snapshot_goes_one_chunk_at_a_time_and_ends_in_replicate_after_the_install() {
        let mut p = Progress::new(5);
        let last = LogPosition::new(9, 2);
        p.start_snapshot(last);
        p.on_chunk_sent(3);
        p.on_heartbeat_response(2, 3);
        assert_eq!(p.state, ProgressState::Snapshot { last, offset: 0, sent_round: Some(3) }, "round 3 is not later");
        assert!(!p.on_snapshot_received(LogPosition::new(8, 2), 10), "another snapshot's answer");
        assert!(p.on_snapshot_received(last, 10));
        p.on_chunk_sent(3);
        p.on_heartbeat_response(2, 4);
        assert_eq!(p.state, ProgressState::Snapshot { last, offset: 10, sent_round: None }, "presumed lost: resend");
        assert!(!p.on_rejected(4, 1), "rejections of old appends are stale");
        p.on_accepted(8);
        assert!(matches!(p.state, ProgressState::Snapshot { .. }), "below the snapshot: a stale ack");
        p.on_accepted(9);
        assert_eq!((p.match_index, p.next_index), (9, 10));
        assert_eq!(p.state, ProgressState::Replicate { inflight: VecDeque::new() });
    }
}
