//! The follower's side of log replication (§5.3).
//!
//! In: AppendEntries and heartbeats from the leader of our term, and
//! commit indexes it reports outside them ([`Raft::learn_commit`]).
//! Out: log changes to persist, a commit index, and replies to the leader
//! (held by the gate until the entries they acknowledge are durable).
//!
//! A rejection carries a hint (our last index, or the conflicting term and
//! where it starts in our log) so the leader skips a whole term per round
//! trip. Entries at or below our commit index are never truncated: an
//! append that starts below it is answered with the commit index instead
//! of being checked.

use crate::entry::{Entry, LogPosition};
use crate::message::{AppendOutcome, ConflictHint, Message};
use crate::raft::{Raft, RoleState};
use haven_runtime::NodeId;

impl Raft {
    /// The sender of an append or heartbeat in our term is its leader.
    /// Returns false if that contradicts what we know of this term.
    pub(crate) fn accept_leader(&mut self, from: NodeId) -> bool {
        let second_leader = match self.role {
            RoleState::Leader(_) => true,
            _ => self.leader.is_some_and(|leader| leader != from),
        };
        if second_leader {
            self.counters.protocol_violations += 1;
            return false;
        }
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(self.term, Some(from));
        }
        self.set_leader(Some(from));
        self.reset_election_deadline();
        true
    }

    pub(crate) fn on_append(&mut self, from: NodeId, prev: LogPosition, entries: Vec<Entry>, commit: u64) {
        if !append_is_well_formed(self.term, prev, &entries) {
            self.counters.messages_invalid += 1;
            return;
        }
        if !self.accept_leader(from) || self.installing.is_some() {
            // While a snapshot is being installed the log stays as it is.
            return;
        }
        let outcome = if prev.index < self.commit {
            // Our committed prefix matches every later leader's log (§5.4.3):
            // no need to check an older position, continue after it.
            AppendOutcome::Accepted { match_index: self.commit }
        } else if self.log.term_at(prev.index) != Some(prev.term) {
            AppendOutcome::Rejected { prev_index: prev.index, hint: self.conflict_hint(prev.index) }
        } else {
            let last_new = prev.index + entries.len() as u64;
            self.merge(entries);
            // §5.3: commit no further than what this message proved we share.
            self.commit_to(commit.min(last_new));
            AppendOutcome::Accepted { match_index: last_new }
        };
        self.gate.send(from, Message::AppendResponse { term: self.term, outcome });
    }

    pub(crate) fn on_heartbeat(&mut self, from: NodeId, commit: u64, round: u64) {
        if !self.accept_leader(from) {
            return;
        }
        // The leader sends at most our acknowledged match index, which our
        // durable log holds; the bound is defence against a bad peer.
        self.commit_to(commit.min(self.log.last_index()));
        self.gate.send(from, Message::HeartbeatResponse { term: self.term, round });
    }

    /// Appends what is new in `entries` (which follow a matching position),
    /// truncating our log at the first conflict (§5.3, log matching).
    fn merge(&mut self, entries: Vec<Entry>) {
        let Some(first_new) = entries.iter().position(|e| self.log.term_at(e.index) != Some(e.term)) else {
            return; // a duplicate or delayed append: we hold all of it
        };
        let index = entries[first_new].index;
        if self.log.term_at(index).is_some() {
            // Entries follow a prev position at or above our commit index,
            // so a committed entry can never be the one replaced here.
            assert!(index > self.commit, "truncating committed entry {index} (commit {})", self.commit);
            self.log.truncate_from(index);
        }
        for entry in entries.into_iter().skip(first_new) {
            self.log.append(entry);
        }
        self.gate.note_entries_from(index);
    }

    fn conflict_hint(&self, prev_index: u64) -> ConflictHint {
        if prev_index > self.log.last_index() {
            return ConflictHint::LogTooShort { last_index: self.log.last_index() };
        }
        let term = self.log.term_at(prev_index).expect("positions from the commit index on are in the log");
        ConflictHint::TermMismatch { term, first_index: self.log.first_index_of_term(term) }
    }

    /// A commit index `from` reported outside Raft's messages, as leader of
    /// `term`: the station's leader puts it in its answer to a request a
    /// follower relayed. Returns whether our commit index rose.
    ///
    /// Why: the follower answers its client once it applied the write
    /// itself (as etcd's members do), and from appends alone it learns the
    /// commit only after its own fsync and one more round trip, which at
    /// low load cost its clients a tenth of their writes per second.
    ///
    /// Safe because only `from` can lead `term` (§5.2), so while our log
    /// ends with an entry of `term` that entry came from `from`, and by log
    /// matching (§5.3) our log equals its log up to there; we commit no
    /// further. It does not count as hearing from the leader (no election
    /// timer reset, no lease), and a late or repeated hint is harmless: it
    /// names an index that was committed when it was sent.
    pub fn learn_commit(&mut self, from: NodeId, term: u64, commit: u64) -> bool {
        let led_by_sender = matches!(self.role, RoleState::Follower) && self.leader == Some(from);
        let last = self.log.last();
        if term != self.term || !led_by_sender || self.installing.is_some() || last.term != term {
            return false;
        }
        let before = self.commit;
        self.commit_to(commit.min(last.index));
        self.commit > before
    }

    pub(crate) fn commit_to(&mut self, index: u64) {
        assert!(index <= self.log.last_index() || index <= self.commit, "commit beyond the log");
        self.commit = self.commit.max(index);
    }
}

/// Contiguous after `prev`, terms never decreasing and never above the
/// sender's term, every payload decodable.
fn append_is_well_formed(term: u64, prev: LogPosition, entries: &[Entry]) -> bool {
    if prev.term > term {
        return false;
    }
    let mut previous = prev;
    for entry in entries {
        let contiguous = previous.index.checked_add(1) == Some(entry.index);
        if !contiguous || entry.term < previous.term || entry.term > term || entry.kind().is_err() {
            return false;
        }
        previous = entry.position();
    }
    true
}
