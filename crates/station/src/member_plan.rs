//! The leader's next step from Raft's configuration towards the member table.
//!
//! In: the member table (what the operator wants) and the configuration in
//! force. Out: the next configuration to propose, or none when they agree
//! or a joint configuration is still being left.
//!
//! One change at a time, in this order: drop members the table no longer
//! has (a learner at once; a voter unless it is the last one), then add
//! each new member as a learner, then promote learners the table wants
//! voting. Raft itself refuses a promotion until the learner's log has
//! caught up (`NotCaughtUp`), so the leader simply asks again later. Being
//! a pure function of replicated state and Raft's configuration, any new
//! leader computes the same plan and finishes what its predecessor began.

use crate::members::MemberTable;
use haven_raft::Membership;
use haven_runtime::NodeId;

/// The next (voters, learners) to propose, if any.
pub fn next_step(table: &MemberTable, current: &Membership) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    if table.is_empty() || current.is_joint() {
        return None;
    }
    let wanted = |id: NodeId| table.get(id.0);
    let without = |list: &[NodeId], gone: NodeId| list.iter().copied().filter(|&n| n != gone).collect::<Vec<_>>();
    let (voters, learners) = (&current.voters, &current.learners);
    if let Some(&gone) = learners.iter().find(|&&n| wanted(n).is_none()) {
        return Some((voters.clone(), without(learners, gone)));
    }
    if let Some(&gone) = voters.iter().find(|&&n| wanted(n).is_none())
        && voters.len() > 1
    {
        return Some((without(voters, gone), learners.clone()));
    }
    let member = |id: u64| voters.contains(&NodeId(id)) || learners.contains(&NodeId(id));
    if let Some(new) = table.members().find(|m| !member(m.id)) {
        let mut learners = learners.clone();
        learners.push(NodeId(new.id));
        return Some((voters.clone(), learners));
    }
    let promoted = learners.iter().copied().find(|&n| wanted(n).is_some_and(|m| m.voter))?;
    let mut voters = voters.clone();
    voters.push(promoted);
    Some((voters, without(learners, promoted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::{MemberOp, MemberRecord};

    fn table(voters: &[u64], learners: &[u64]) -> MemberTable {
        let record = |id: u64, voter: bool| MemberRecord {
            id,
            peer_addr: format!("127.0.0.1:{id}"),
            client_url: String::new(),
            voter,
        };
        let list = voters.iter().map(|&id| record(id, true)).chain(learners.iter().map(|&id| record(id, false)));
        let mut table = MemberTable::default();
        table.apply((0, 0), &MemberOp::Seed(list.collect())).unwrap();
        table
    }

    fn config(voters: &[u64], learners: &[u64]) -> Membership {
        Membership::new(voters.iter().map(|&n| NodeId(n)).collect(), learners.iter().map(|&n| NodeId(n)).collect())
    }

    fn ids(list: &[NodeId]) -> Vec<u64> {
        list.iter().map(|n| n.0).collect()
    }

    /// Applies the plan until it ends, as if every step committed at once.
    fn walk(table: &MemberTable, mut current: Membership) -> Vec<(Vec<u64>, Vec<u64>)> {
        let mut steps = Vec::new();
        while let Some((voters, learners)) = next_step(table, &current) {
            steps.push((ids(&voters), ids(&learners)));
            assert!(steps.len() <= 8, "the plan must end: {steps:?}");
            current = Membership::new(voters, learners);
        }
        steps
    }

    #[test]
    fn an_agreeing_configuration_needs_nothing() {
        assert_eq!(next_step(&table(&[1, 2, 3], &[]), &config(&[1, 2, 3], &[])), None);
        assert_eq!(next_step(&MemberTable::default(), &config(&[1], &[])), None, "an unseeded table plans nothing");
    }

    #[test]
    fn a_new_voter_joins_as_a_learner_first() {
        let steps = walk(&table(&[1, 2, 3, 4], &[]), config(&[1, 2, 3], &[]));
        assert_eq!(steps, vec![(vec![1, 2, 3], vec![4]), (vec![1, 2, 3, 4], vec![])]);
    }

    #[test]
    fn a_wanted_learner_stays_a_learner() {
        let steps = walk(&table(&[1, 2, 3], &[4]), config(&[1, 2, 3], &[]));
        assert_eq!(steps, vec![(vec![1, 2, 3], vec![4])]);
    }

    #[test]
    fn removals_come_before_additions_and_never_empty_the_voters() {
        let steps = walk(&table(&[4], &[]), config(&[1, 2], &[3]));
        assert_eq!(
            steps,
            vec![(vec![1, 2], vec![]), (vec![2], vec![]), (vec![2], vec![4]), (vec![2, 4], vec![]), (vec![4], vec![])]
        );
    }

    #[test]
    fn nothing_is_planned_while_joint() {
        let joint = Membership { voters_outgoing: vec![NodeId(1)], ..config(&[1, 2], &[]) };
        assert_eq!(next_step(&table(&[2], &[]), &joint), None);
    }
}
