//! Counting the answers to one (pre-)election.
//!
//! In: each voter's grant or refusal (duplicates are harmless).
//! Out: won (a quorum granted, including this node), lost (a quorum can
//! no longer be reached) or still pending. In a joint configuration a
//! quorum is a majority of each half (§4.3).

use crate::membership::Membership;
use haven_runtime::NodeId;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Won,
    Lost,
    Pending,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    granted: BTreeSet<NodeId>,
    refused: BTreeSet<NodeId>,
}

impl Tally {
    pub(crate) fn record(&mut self, voter: NodeId, granted: bool) {
        // The first answer counts: a voter cannot change its mind in a term,
        // and a duplicated or delayed message must not count twice.
        if self.granted.contains(&voter) || self.refused.contains(&voter) {
            return;
        }
        if granted {
            self.granted.insert(voter);
        } else {
            self.refused.insert(voter);
        }
    }

    /// `me` must be among the grants to win: a candidate counts its own vote
    /// only once its term and vote are durable, and a leader must never send
    /// in a term it could forget.
    pub(crate) fn outcome(&self, me: NodeId, membership: &Membership) -> Outcome {
        if self.granted.contains(&me) && membership.is_quorum(|id| self.granted.contains(&id)) {
            Outcome::Won
        } else if membership.is_quorum_impossible(|id| self.refused.contains(&id)) {
            Outcome::Lost
        } else {
            Outcome::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters() -> Membership {
        Membership::new(vec![NodeId(1), NodeId(2), NodeId(3)], vec![])
    }

    #[test]
    fn a_majority_including_self_wins() {
        let mut t = Tally::default();
        t.record(NodeId(2), true);
        t.record(NodeId(3), true);
        assert_eq!(t.outcome(NodeId(1), &voters()), Outcome::Pending, "own vote not yet durable");
        t.record(NodeId(1), true);
        assert_eq!(t.outcome(NodeId(1), &voters()), Outcome::Won);
    }

    #[test]
    fn a_voter_counts_once() {
        let mut t = Tally::default();
        t.record(NodeId(2), false);
        t.record(NodeId(2), true);
        t.record(NodeId(2), false);
        assert_eq!(t.outcome(NodeId(1), &voters()), Outcome::Pending);
        t.record(NodeId(3), false);
        assert_eq!(t.outcome(NodeId(1), &voters()), Outcome::Lost);
    }

    #[test]
    fn a_joint_election_needs_both_halves() {
        let joint = Membership {
            voters: vec![NodeId(1), NodeId(4), NodeId(5)],
            voters_outgoing: vec![NodeId(1), NodeId(2), NodeId(3)],
            learners: vec![],
        };
        let mut t = Tally::default();
        for id in [1, 2, 3] {
            t.record(NodeId(id), true);
        }
        assert_eq!(t.outcome(NodeId(1), &joint), Outcome::Pending, "all of C_old, one of C_new");
        t.record(NodeId(4), true);
        assert_eq!(t.outcome(NodeId(1), &joint), Outcome::Won);
        let mut t = Tally::default();
        t.record(NodeId(4), false);
        t.record(NodeId(5), false);
        assert_eq!(t.outcome(NodeId(1), &joint), Outcome::Lost, "C_new can no longer agree");
    }
}
