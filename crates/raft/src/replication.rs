//! The leader's side of log replication (§5.3), the commit rule (§5.4.2)
//! and check-quorum.
//!
//! In: heartbeat and check-quorum deadlines, append and heartbeat responses.
//! Out: AppendEntries batches and heartbeats (sent without waiting for the
//! leader's own fsync, §10.2.1), a commit index, and stepping down when a
//! majority has not been heard from for a minimum election timeout.
//!
//! Appends are not sent when a proposal arrives but when the caller takes
//! the next `Ready`: everything proposed in between travels in one batch
//! per follower, up to `entries_per_append_max` entries and
//! `append_bytes_max` bytes, with at most `inflight_appends_max` batches
//! unacknowledged per follower.

use crate::entry::LogPosition;
use crate::message::{AppendOutcome, ConflictHint, Message};
use crate::progress::ProgressState;
use crate::raft::{Raft, RoleState};
use haven_runtime::NodeId;

impl Raft {
    pub(crate) fn tick_leader(&mut self) {
        let (now, heartbeat, check_every) =
            (self.now, self.config.heartbeat_interval, self.config.election_timeout_min);
        self.expire_transfer();
        let RoleState::Leader(leadership) = &mut self.role else { return };
        let heartbeat_due = now >= leadership.heartbeat_deadline;
        if heartbeat_due {
            leadership.heartbeat_deadline = now + heartbeat;
        }
        if now >= leadership.quorum_check_deadline {
            if !leadership.quorum_active(self.id, self.log.membership()) {
                self.become_follower(self.term, None);
                return;
            }
            leadership.reset_activity();
            leadership.quorum_check_deadline = now + check_every;
            self.renew_snapshot_request();
        }
        if heartbeat_due {
            self.broadcast_heartbeats();
        }
    }

    /// Starts a new heartbeat round; its answers also confirm reads.
    pub(crate) fn broadcast_heartbeats(&mut self) {
        let RoleState::Leader(leadership) = &mut self.role else { return };
        leadership.read_round += 1;
        leadership.read_round_wanted = false;
        let round = leadership.read_round;
        leadership.note_round_sent(round, self.now);
        let beats: Vec<(NodeId, u64)> = leadership
            .progress
            .iter_mut()
            .map(|(&peer, p)| {
                let commit = p.match_index.min(self.commit);
                p.commit_sent = p.commit_sent.max(commit);
                (peer, commit)
            })
            .collect();
        for (peer, commit) in beats {
            self.gate.send_now(peer, Message::Heartbeat { term: self.term, commit, round });
        }
    }

    /// Sends every follower what its progress allows.
    pub(crate) fn replicate_all(&mut self) {
        for peer in self.peers() {
            while let Some(msg) = self.next_append(peer) {
                self.gate.send_now(peer, msg);
            }
            if let Some(msg) = self.commit_notice(peer) {
                self.gate.send_now(peer, msg);
            }
        }
    }

    /// With `commit_notices`: an empty append telling `peer` the commit
    /// index, if it was not told it and has answered every append sent to
    /// it. A follower learns a commit only from an append or a heartbeat, so
    /// without this it would apply (and answer the writes it relayed, and
    /// serve its watchers) up to a heartbeat interval after the leader once
    /// no new entry follows; etcd's leader tells it at once too. Its prev is
    /// the follower's match, which it holds durably, so it commits up to it.
    fn commit_notice(&mut self, peer: NodeId) -> Option<Message> {
        let (commit, term) = (self.commit, self.term);
        if !self.config.commit_notices {
            return None;
        }
        let RoleState::Leader(leadership) = &mut self.role else { return None };
        let progress = leadership.progress.get_mut(&peer)?;
        // Only a follower with nothing in flight: one that is still to
        // answer appends gets the commit with the next one its answer lets
        // out, so under load (windows rarely empty) this costs nothing.
        let at_rest = matches!(&progress.state, ProgressState::Replicate { inflight } if inflight.is_empty());
        if progress.commit_sent >= commit || !at_rest {
            return None;
        }
        let prev_index = progress.match_index;
        let prev_term = self.log.term_at(prev_index)?;
        progress.commit_sent = commit;
        Some(Message::Append { term, prev: LogPosition::new(prev_index, prev_term), entries: Vec::new(), commit })
    }

    fn next_append(&mut self, peer: NodeId) -> Option<Message> {
        if self.needs_snapshot(peer) {
            return self.next_snapshot_chunk(peer);
        }
        let last_index = self.log.last_index();
        let inflight_max = self.config.inflight_appends_max;
        let RoleState::Leader(leadership) = &mut self.role else { return None };
        let progress = leadership.progress.get_mut(&peer)?;
        if !progress.can_send(last_index, inflight_max) {
            return None;
        }
        let prev_index = progress.next_index - 1;
        let prev_term = self.log.term_at(prev_index).expect("needs_snapshot checked that it is not compacted");
        let entries =
            self.log.batch(progress.next_index, self.config.entries_per_append_max, self.config.append_bytes_max);
        progress.on_sent(entries.last().map_or(prev_index, |e| e.index), inflight_max);
        progress.commit_sent = progress.commit_sent.max(self.commit);
        let prev = LogPosition::new(prev_index, prev_term);
        Some(Message::Append { term: self.term, prev, entries, commit: self.commit })
    }

    /// Whether `peer` is receiving a snapshot or needs entries that are compacted.
    fn needs_snapshot(&self, peer: NodeId) -> bool {
        let RoleState::Leader(leadership) = &self.role else { return false };
        leadership.progress.get(&peer).is_some_and(|p| {
            matches!(p.state, ProgressState::NeedsSnapshot | ProgressState::Snapshot { .. })
                || self.log.term_at(p.next_index - 1).is_none()
        })
    }

    pub(crate) fn on_append_response(&mut self, from: NodeId, outcome: AppendOutcome) {
        let last_index = self.log.last_index();
        let claimed = match outcome {
            AppendOutcome::Accepted { match_index } => match_index,
            AppendOutcome::Rejected { prev_index, .. } => prev_index,
        };
        if claimed > last_index {
            // Nobody can match or reject what we never sent.
            self.counters.messages_invalid += 1;
            return;
        }
        let hinted_next = match outcome {
            AppendOutcome::Rejected { prev_index, hint } => self.hinted_next(prev_index, hint),
            AppendOutcome::Accepted { .. } => 0,
        };
        let RoleState::Leader(leadership) = &mut self.role else { return };
        if from == self.id {
            leadership.self_match = leadership.self_match.max(claimed);
            self.maybe_commit();
            return;
        }
        let Some(progress) = leadership.progress.get_mut(&from) else { return };
        progress.recent_active = true;
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                if progress.on_accepted(match_index) {
                    self.maybe_commit();
                    self.send_timeout_now_if_caught_up();
                }
            }
            AppendOutcome::Rejected { prev_index, .. } => {
                progress.on_rejected(prev_index, hinted_next);
            }
        }
    }

    /// Where to probe next after a rejection of `prev_index`: past the end
    /// of a short log, past our last entry of the follower's conflicting
    /// term, or to the start of that term in the follower's log.
    fn hinted_next(&self, prev_index: u64, hint: ConflictHint) -> u64 {
        match hint {
            ConflictHint::LogTooShort { last_index } => last_index.saturating_add(1),
            ConflictHint::TermMismatch { term, first_index } => {
                self.log.last_index_of_term(term, prev_index).map_or(first_index, |last| last + 1)
            }
        }
    }

    pub(crate) fn on_heartbeat_response(&mut self, from: NodeId, round: u64) {
        let inflight_max = self.config.inflight_appends_max;
        let RoleState::Leader(leadership) = &mut self.role else { return };
        if round > leadership.read_round {
            // Nobody can answer a round we never sent.
            self.counters.messages_invalid += 1;
            return;
        }
        if let Some(progress) = leadership.progress.get_mut(&from) {
            progress.on_heartbeat_response(inflight_max, round);
            progress.round_acked = progress.round_acked.max(round);
        }
        self.confirm_reads();
    }

    /// §5.4.2: an index is committed by counting replicas only if it holds
    /// an entry of the current term; earlier entries commit with it.
    fn maybe_commit(&mut self) {
        let RoleState::Leader(leadership) = &self.role else { return };
        let quorum_match = leadership.quorum_match(self.id, self.log.membership());
        let current_term = self.log.term_at(quorum_match) == Some(self.term);
        #[cfg(feature = "planted-bugs")]
        let current_term = current_term || crate::planted::active(crate::planted::Bug::CommitPreviousTermByCounting);
        if quorum_match > self.commit && current_term {
            self.commit = quorum_match;
            self.index_waiting_reads();
            self.advance_membership();
        }
    }
}
