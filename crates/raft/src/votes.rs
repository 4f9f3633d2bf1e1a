//! Counting the answers to one (pre-)election.
//!
//! In: each voter's grant or refusal (duplicates are harmless).
//! Out: won (a majority granted, including this node), lost (a majority
//! refused) or still pending.

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
    pub(crate) fn outcome(&self, me: NodeId, voters: &[NodeId]) -> Outcome {
        let quorum = voters.len() / 2 + 1;
        let granted = voters.iter().filter(|v| self.granted.contains(v)).count();
        let refused = voters.iter().filter(|v| self.refused.contains(v)).count();
        if granted >= quorum && self.granted.contains(&me) {
            Outcome::Won
        } else if refused >= quorum {
            Outcome::Lost
        } else {
            Outcome::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOTERS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

    #[test]
    fn a_majority_including_self_wins() {
        let mut t = Tally::default();
        t.record(NodeId(2), true);
        t.record(NodeId(3), true);
        assert_eq!(t.outcome(NodeId(1), &VOTERS), Outcome::Pending, "own vote not yet durable");
        t.record(NodeId(1), true);
        assert_eq!(t.outcome(NodeId(1), &VOTERS), Outcome::Won);
    }

    #[test]
    fn a_voter_counts_once() {
        let mut t = Tally::default();
        t.record(NodeId(2), false);
        t.record(NodeId(2), true);
        t.record(NodeId(2), false);
        assert_eq!(t.outcome(NodeId(1), &VOTERS), Outcome::Pending);
        t.record(NodeId(3), false);
        assert_eq!(t.outcome(NodeId(1), &VOTERS), Outcome::Lost);
    }
}
