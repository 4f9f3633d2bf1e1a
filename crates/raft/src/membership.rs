//! A cluster configuration: who votes, who only learns (thesis ch. 4).
//!
//! In: voter and learner sets, or the bytes of a configuration entry or
//! snapshot (untrusted: validated on decoding).
//! Out: [`Membership`] and its quorum arithmetic: in a joint configuration
//! (C_old,new, §4.3) a decision needs a majority of the incoming voters
//! and, separately, a majority of the outgoing ones.

use haven_runtime::NodeId;
use haven_runtime::wire;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Members of one configuration, bounding what a peer can make us track.
pub const MEMBERS_MAX: usize = 64;

/// Every list is sorted and without duplicates; a learner is never in
/// `voters` (it may be in `voters_outgoing`: a voter being demoted).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the configuration in force (C_new, or the new half of
    /// a joint configuration).
    pub voters: Vec<NodeId>,
    /// Non-empty only in a joint configuration: the voters of C_old.
    pub voters_outgoing: Vec<NodeId>,
    /// Receive the log, never vote, never count toward commit.
    pub learners: Vec<NodeId>,
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MembershipError {
    #[error("a configuration needs at least one voter")]
    NoVoters,
    #[error("member lists must be sorted and without duplicates")]
    NotSorted,
    #[error("{0} is both a voter and a learner")]
    LearnerVotes(NodeId),
    #[error("{members} members exceed MEMBERS_MAX of {members_max}")]
    TooMany { members: usize, members_max: usize },
    #[error("configuration bytes do not decode: {0}")]
    Decode(String),
}

impl Membership {
    /// A simple (non-joint) configuration; the lists are sorted for the caller.
    pub fn new(mut voters: Vec<NodeId>, mut learners: Vec<NodeId>) -> Membership {
        voters.sort_unstable();
        learners.sort_unstable();
        Membership { voters, voters_outgoing: Vec::new(), learners }
    }

    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// Votes in this configuration, in either half if joint.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.binary_search(&id).is_ok() || self.voters_outgoing.binary_search(&id).is_ok()
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.binary_search(&id).is_ok()
    }

    /// Everyone the leader replicates to (and this node), sorted.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> =
            self.voters.iter().chain(&self.voters_outgoing).chain(&self.learners).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Everyone whose vote counts, sorted.
    pub fn all_voters(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.voters.iter().chain(&self.voters_outgoing).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    fn voter_sets(&self) -> impl Iterator<Item = &[NodeId]> {
        std::iter::once(self.voters.as_slice()).chain(self.is_joint().then_some(self.voters_outgoing.as_slice()))
    }

    /// The highest value a quorum reached: in each voter set the value that
    /// a majority is at or above, and the lowest of those across the sets.
    pub fn quorum_value(&self, value: impl Fn(NodeId) -> u64) -> u64 {
        assert!(!self.voters.is_empty(), "a configuration in use has voters");
        let majority_value = |set: &[NodeId]| {
            let mut values: Vec<u64> = set.iter().map(|&id| value(id)).collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            values[set.len() / 2]
        };
        self.voter_sets().map(majority_value).min().expect("at least the incoming set")
    }

    /// Whether the voters for which `yes` holds are a quorum.
    pub fn is_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        self.quorum_value(|id| u64::from(yes(id))) == 1
    }

    /// Whether the voters for which `no` holds make a quorum impossible.
    pub fn is_quorum_impossible(&self, no: impl Fn(NodeId) -> bool) -> bool {
        // A majority of n needs n / 2 + 1 votes: impossible once n - n / 2 refused.
        self.voter_sets().any(|set| set.iter().filter(|&&id| no(id)).count() >= set.len() - set.len() / 2)
    }

    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        let lists = [&self.voters, &self.voters_outgoing, &self.learners];
        if lists.iter().any(|list| list.windows(2).any(|w| w[0] >= w[1])) {
            return Err(MembershipError::NotSorted);
        }
        // A voter of C_old may be a learner of C_new: it is demoted when the joint configuration ends.
        if let Some(&id) = self.learners.iter().find(|&&id| self.voters.binary_search(&id).is_ok()) {
            return Err(MembershipError::LearnerVotes(id));
        }
        let members = self.members().len();
        if members > MEMBERS_MAX {
            return Err(MembershipError::TooMany { members, members_max: MEMBERS_MAX });
        }
        Ok(())
    }

    /// The body of a configuration entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode(self, &mut out).expect("a membership always encodes");
        out
    }

    /// Decodes and validates [`Membership::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Membership, MembershipError> {
        let membership: Membership = wire::decode(bytes).map_err(|e| MembershipError::Decode(e.to_string()))?;
        membership.validate()?;
        Ok(membership)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn a_joint_quorum_needs_a_majority_of_each_half() {
        let joint = Membership { voters: ids(&[3, 4, 5]), voters_outgoing: ids(&[1, 2, 3]), learners: vec![] };
        let matched = |id: NodeId| [0, 9, 9, 9, 2, 0][id.0 as usize];
        assert_eq!(joint.quorum_value(matched), 2, "new half: 9, 2, 0 -> 2; old half: 9, 9, 9 -> 9");
        assert!(!joint.is_quorum(|id| [1, 2, 3].contains(&id.0)), "all of the old, one of the new");
        assert!(joint.is_quorum(|id| [1, 3, 4].contains(&id.0)));
    }

    #[test]
    fn a_quorum_is_impossible_once_a_majority_of_any_half_refused() {
        let joint = Membership { voters: ids(&[3, 4, 5]), voters_outgoing: ids(&[1, 2]), learners: vec![] };
        assert!(!joint.is_quorum_impossible(|id| id.0 == 4));
        assert!(joint.is_quorum_impossible(|id| id.0 == 1), "one of two: no majority of the old half left");
        assert!(joint.is_quorum_impossible(|id| id.0 == 4 || id.0 == 5));
        let single = Membership::new(ids(&[1]), vec![]);
        assert!(single.is_quorum_impossible(|id| id.0 == 1));
        assert!(!single.is_quorum_impossible(|_| false));
    }

    #[test]
    fn learners_never_count() {
        let config = Membership::new(ids(&[1, 2, 3]), ids(&[4, 5]));
        assert!(!config.is_quorum(|id| id.0 >= 3), "3 plus two learners is one voter of three");
        assert_eq!(config.members(), ids(&[1, 2, 3, 4, 5]));
        assert_eq!(config.all_voters(), ids(&[1, 2, 3]));
    }

    #[test]
    fn bytes_round_trip_and_bad_configurations_are_refused() {
        let config = Membership { voters: ids(&[1, 2]), voters_outgoing: ids(&[1]), learners: ids(&[7]) };
        assert_eq!(Membership::from_bytes(&config.to_bytes()), Ok(config));
        let bad = |m: Membership| Membership::from_bytes(&m.to_bytes()).err();
        assert_eq!(bad(Membership::default()), Some(MembershipError::NoVoters));
        let unsorted = Membership { voters: ids(&[2, 1]), ..Membership::default() };
        assert_eq!(bad(unsorted), Some(MembershipError::NotSorted));
        assert_eq!(bad(Membership::new(ids(&[1]), ids(&[1]))), Some(MembershipError::LearnerVotes(NodeId(1))));
        let many = Membership::new((0..65).map(NodeId).collect(), vec![]);
        assert!(matches!(bad(many), Some(MembershipError::TooMany { members: 65, .. })));
        assert!(matches!(Membership::from_bytes(&[0xff; 3]), Err(MembershipError::Decode(_))));
    }
}
