//! A leader's view of its followers.
//!
//! In: the members (voters and learners), the leader's log length and
//! clock at election, and membership changes.
//! Out: per-follower [`Progress`], the quorum match index that drives the
//! commit rule, the heartbeat round a quorum answered (ReadIndex), and
//! whether a quorum was heard from lately (check-quorum).

use crate::membership::Membership;
use crate::progress::Progress;
use crate::transfer::Transfer;
use haven_runtime::{Instant, NodeId};
use std::collections::{BTreeMap, VecDeque};

/// Heartbeat rounds remembered for the lease; forgetting older ones only
/// delays a lease, never extends one.
const ROUNDS_TRACKED_MAX: usize = 64;

#[derive(Debug)]
pub(crate) struct Leadership {
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// The leader's own durable log end, learned from its self-acknowledgements.
    pub(crate) self_match: u64,
    pub(crate) heartbeat_deadline: Instant,
    pub(crate) quorum_check_deadline: Instant,
    /// The index of this term's first entry (the no-op): until it commits,
    /// the commit index may lag what earlier leaders acknowledged.
    pub(crate) term_start: u64,
    /// Heartbeat broadcasts so far in this term; each is one round.
    pub(crate) read_round: u64,
    /// A read waits for a round that has not been broadcast yet.
    pub(crate) read_round_wanted: bool,
    pub(crate) transfer: Option<Transfer>,
    /// Heartbeat rounds not yet answered by a quorum, with when they left.
    pub(crate) rounds_sent: VecDeque<(u64, Instant)>,
    /// When the latest round a quorum answered left: the lease runs from there.
    pub(crate) lease_start: Option<Instant>,
}

impl Leadership {
    /// Every follower starts in probe at the leader's next index (§5.3).
    pub(crate) fn new(
        me: NodeId,
        members: &[NodeId],
        next_index: u64,
        heartbeat: Instant,
        check: Instant,
    ) -> Leadership {
        let progress = members.iter().filter(|&&v| v != me).map(|&v| (v, Progress::new(next_index))).collect();
        Leadership {
            progress,
            self_match: 0,
            heartbeat_deadline: heartbeat,
            quorum_check_deadline: check,
            term_start: next_index,
            read_round: 0,
            read_round_wanted: false,
            transfer: None,
            rounds_sent: VecDeque::new(),
            lease_start: None,
        }
    }

    /// Tracks exactly `members` (other than `me`) after a configuration
    /// change; newcomers start in probe at `next_index`.
    pub(crate) fn sync_members(&mut self, me: NodeId, members: &[NodeId], next_index: u64) {
        self.progress.retain(|id, _| members.contains(id));
        for &id in members.iter().filter(|&&id| id != me) {
            self.progress.entry(id).or_insert_with(|| Progress::new(next_index));
        }
    }

    /// Round `round` leaves now.
    pub(crate) fn note_round_sent(&mut self, round: u64, now: Instant) {
        if self.rounds_sent.len() == ROUNDS_TRACKED_MAX {
            self.rounds_sent.pop_front();
        }
        self.rounds_sent.push_back((round, now));
    }

    /// A quorum answered every round up to `round`: the lease starts when
    /// the latest of them left (the voters' promises started later).
    pub(crate) fn note_round_confirmed(&mut self, round: u64) {
        while let Some(&(_, at)) = self.rounds_sent.front().filter(|(sent, _)| *sent <= round) {
            self.rounds_sent.pop_front();
            assert!(self.lease_start.is_none_or(|start| start <= at), "rounds leave in clock order");
            self.lease_start = Some(at);
        }
    }

    /// The highest value a quorum of `membership` reached, where the
    /// leader's own value is `mine` and a follower's is `of(progress)`.
    fn quorum_value(&self, me: NodeId, membership: &Membership, mine: u64, of: impl Fn(&Progress) -> u64) -> u64 {
        membership.quorum_value(|id| if id == me { mine } else { self.progress.get(&id).map_or(0, &of) })
    }

    /// The highest index durable on a quorum.
    pub(crate) fn quorum_match(&self, me: NodeId, membership: &Membership) -> u64 {
        self.quorum_value(me, membership, self.self_match, |p| p.match_index)
    }

    /// The latest heartbeat round a quorum answered (the leader answers
    /// every round it sends).
    pub(crate) fn quorum_round(&self, me: NodeId, membership: &Membership) -> u64 {
        self.quorum_value(me, membership, self.read_round, |p| p.round_acked)
    }

    /// Whether a quorum (the leader included, if it votes) was heard from since the last check.
    pub(crate) fn quorum_active(&self, me: NodeId, membership: &Membership) -> bool {
        membership.is_quorum(|id| id == me || self.progress.get(&id).is_some_and(|p| p.recent_active))
    }

    pub(crate) fn reset_activity(&mut self) {
        for progress in self.progress.values_mut() {
            progress.recent_active = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_match_is_the_majority_th_highest() {
        let voters = [NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)];
        let mut l = Leadership::new(NodeId(1), &voters, 1, Instant::ZERO, Instant::ZERO);
        let voters = Membership::new(voters.to_vec(), vec![]);
        l.self_match = 9;
        for (v, m) in [(2, 7), (3, 3), (4, 8), (5, 1)] {
            l.progress.get_mut(&NodeId(v)).unwrap().match_index = m;
        }
        assert_eq!(l.quorum_match(NodeId(1), &voters), 7, "9, 8 and 7 are three of five");
    }

    #[test]
    fn quorum_activity_counts_the_leader() {
        let voters = [NodeId(1), NodeId(2), NodeId(3)];
        let mut l = Leadership::new(NodeId(1), &voters, 1, Instant::ZERO, Instant::ZERO);
        let voters = Membership::new(voters.to_vec(), vec![]);
        assert!(!l.quorum_active(NodeId(1), &voters));
        l.progress.get_mut(&NodeId(3)).unwrap().recent_active = true;
        assert!(l.quorum_active(NodeId(1), &voters));
        l.reset_activity();
        assert!(!l.quorum_active(NodeId(1), &voters));
    }
}
