//! Leader election (§5.2) with pre-vote (§9.6) and the leader lease that
//! keeps a live leader from being unseated (§4.2.3).
//!
//! In: election timeouts, pre-vote and vote requests and responses.
//! Out: role changes, the term and vote to persist, and the requests and
//! replies to send (votes leave only after the vote is durable: the gate).
//!
//! A node whose election timeout expires first asks for pre-votes without
//! changing its term: only if a majority would vote for it (its log is up
//! to date and they have not heard from a leader within the minimum
//! election timeout) does it increment its term and ask for real votes.
//! So a node that was partitioned away cannot force a healthy majority to
//! a higher term when it comes back.

use crate::entry::LogPosition;
use crate::message::Message;
use crate::raft::{Raft, RoleState};
use crate::votes::{Outcome, Tally};
use haven_runtime::NodeId;

impl Raft {
    pub(crate) fn start_pre_vote(&mut self) {
        self.role = RoleState::PreCandidate(Tally::default());
        self.set_leader(None);
        self.reset_election_deadline();
        let (term, last_log) = (self.term + 1, self.log.last());
        for peer in self.voting_peers() {
            self.gate.send(peer, Message::PreVote { term, last_log });
        }
        // A pre-vote promises nothing, so our own counts at once.
        self.record_pre_vote(self.id, true);
    }

    fn record_pre_vote(&mut self, from: NodeId, granted: bool) {
        let RoleState::PreCandidate(tally) = &mut self.role else { return };
        tally.record(from, granted);
        match tally.outcome(self.id, self.log.membership()) {
            Outcome::Won => self.campaign(false),
            Outcome::Lost => self.become_follower(self.term, None),
            Outcome::Pending => {}
        }
    }

    /// `transfer`: started by the leader's TimeoutNow rather than a timeout.
    pub(crate) fn campaign(&mut self, transfer: bool) {
        self.term += 1;
        self.vote = Some(self.id);
        self.gate.note_hard_state();
        self.role = RoleState::Candidate(Tally::default());
        self.set_leader(None);
        self.reset_election_deadline();
        let (term, last_log) = (self.term, self.log.last());
        for peer in self.voting_peers() {
            self.gate.send(peer, Message::Vote { term, last_log, transfer });
        }
        // Our own vote counts only once term and vote are durable.
        self.gate.send(self.id, Message::VoteResponse { term, granted: true });
    }

    /// Granted only for a later term, outside a leader's lease, to an
    /// up-to-date log. Changes nothing durable (no term, no vote). A
    /// follower that grants one restarts its election timeout, as for a
    /// real vote: the pre-candidate can win, and a follower that timed out
    /// while that election runs would split the vote. Two followers then
    /// split only if their timeouts fall within the pre-vote's one-way
    /// delay of each other, not within its round trip and the vote's delay.
    pub(crate) fn on_pre_vote(&mut self, from: NodeId, term: u64, last_log: LogPosition) {
        let granted = term > self.term && !self.in_lease() && last_log >= self.log.last();
        if granted && matches!(self.role, RoleState::Follower) {
            self.reset_election_deadline();
        }
        let term = if granted { term } else { self.term };
        self.gate.send(from, Message::PreVoteResponse { term, granted });
    }

    pub(crate) fn on_pre_vote_response(&mut self, from: NodeId, term: u64, granted: bool) {
        if granted {
            // A grant carries the term we proposed, which is not ours yet.
            if term == self.term + 1 {
                self.record_pre_vote(from, true);
            }
        } else if term > self.term {
            self.become_follower(term, None);
        } else if term == self.term {
            self.record_pre_vote(from, false);
        }
    }

    /// §5.2, §5.4.1: at most one vote per term, and only for a log at
    /// least as up to date as ours. The reply waits for the vote's persist.
    pub(crate) fn on_vote(&mut self, from: NodeId, last_log: LogPosition) {
        let free = self.vote.is_none() && self.leader.is_none();
        let granted = (self.vote == Some(from) || free) && last_log >= self.log.last();
        if granted {
            if self.vote.is_none() {
                self.vote = Some(from);
                self.gate.note_hard_state();
            }
            self.reset_election_deadline();
        }
        #[cfg(feature = "planted-bugs")]
        if crate::planted::active(crate::planted::Bug::VoteBeforePersist) {
            return self.gate.send_now(from, Message::VoteResponse { term: self.term, granted });
        }
        self.gate.send(from, Message::VoteResponse { term: self.term, granted });
    }

    pub(crate) fn on_vote_response(&mut self, from: NodeId, granted: bool) {
        let RoleState::Candidate(tally) = &mut self.role else { return };
        tally.record(from, granted);
        match tally.outcome(self.id, self.log.membership()) {
            Outcome::Won => self.become_leader(),
            Outcome::Lost => self.become_follower(self.term, None),
            Outcome::Pending => {}
        }
    }
}
