//! The member table steering Raft's configuration, on a simulated cluster:
//! n1..n3 start seeded with themselves, n4 and n5 start knowing only the
//! original voters (as `haven station` does when it joins a running
//! cluster), n9 is the operator. An added member becomes a learner, then a
//! voter once caught up; a removed one leaves; a learner is promoted on
//! request; and a leader crash in the middle of a change does not stop it:
//! the new leader finishes it from the replicated table.

use crate::common;

use common::{TestNode, ms};
use haven_raft::{Membership, Role};
use haven_runtime::NodeId;
use haven_sim::{Sim, SimConfig};
use haven_station::{
    MemberAnswer, MemberError, MemberOp, MemberRecord, MemberRequest, Replica, ReplicaConfig, ReplyError, StationMsg,
};

const OPERATOR: NodeId = NodeId(9);

fn record(id: u64) -> MemberRecord {
    MemberRecord { id, peer_addr: format!("10.0.0.{id}:2380"), client_url: String::new(), voter: true }
}

fn cluster(seed: u64) -> Sim<TestNode> {
    let original: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let factory = move |id: NodeId| match id {
        OPERATOR => TestNode::Probe(Vec::new()),
        NodeId(1..=3) => {
            let mut config = ReplicaConfig::new(original.clone());
            config.members = (1..=3).map(record).collect();
            TestNode::Replica(Box::new(Replica::new(config)))
        }
        _ => TestNode::Replica(Box::new(Replica::new(ReplicaConfig::new(original.clone())))),
    };
    let mut sim = Sim::new(SimConfig::new(seed, 9), factory).expect("valid configuration");
    for node in [1, 2, 3, 9] {
        sim.start(NodeId(node));
    }
    sim.run_for(ms(3_000));
    sim
}

fn raft(sim: &Sim<TestNode>, node: u64) -> Option<&haven_raft::Raft> {
    match sim.component(NodeId(node))? {
        TestNode::Replica(r) => r.raft(),
        TestNode::Probe(_) => None,
    }
}

fn leader(sim: &Sim<TestNode>) -> NodeId {
    let leads = |n: &u64| sim.is_up(NodeId(*n)) && raft(sim, *n).is_some_and(|r| r.role() == Role::Leader);
    (1..=5).find(leads).map(NodeId).expect("a leader was elected")
}

fn membership(sim: &Sim<TestNode>) -> Membership {
    raft(sim, leader(sim).0).expect("the leader runs").membership().clone()
}

fn ids(list: &[NodeId]) -> Vec<u64> {
    list.iter().map(|n| n.0).collect()
}

/// Sends `op` as the operator's `seq` to the leader; the first answer.
fn change(sim: &mut Sim<TestNode>, seq: u64, op: MemberOp) -> Result<MemberAnswer, ReplyError> {
    let inbox_len = |sim: &Sim<TestNode>| match sim.component(OPERATOR) {
        Some(TestNode::Probe(inbox)) => inbox.len(),
        _ => panic!("the operator is a probe"),
    };
    let before = inbox_len(sim);
    let to = leader(sim);
    sim.inject(to, OPERATOR, StationMsg::Member(MemberRequest { client: 77, seq, op }));
    sim.run_for(ms(300));
    let Some(TestNode::Probe(inbox)) = sim.component(OPERATOR) else { unreachable!() };
    match inbox.get(before) {
        Some(StationMsg::MemberReply(reply)) => reply.result.clone(),
        other => panic!("expected a member reply from {to} within 300 ms, got {other:?} ({} before)", inbox_len(sim)),
    }
}

fn add(peer: u64, voter: bool) -> MemberOp {
    MemberOp::Add { peer_addr: record(peer).peer_addr, voter }
}

#[test]
fn the_first_leader_seeds_the_table_on_every_replica() {
    let sim = cluster(1);
    for node in 1..=3 {
        let TestNode::Replica(r) = sim.component(NodeId(node)).unwrap() else { unreachable!() };
        let table: Vec<MemberRecord> = r.state_machine().unwrap().members().members().cloned().collect();
        assert_eq!(table, (1..=3).map(record).collect::<Vec<_>>(), "n{node}");
    }
}

#[test]
fn an_added_member_learns_first_then_votes_and_a_removed_one_leaves() {
    let mut sim = cluster(2);
    let added = change(&mut sim, 1, add(4, true)).expect("the add applies");
    let four = added.member.expect("the add names the new member");
    assert_eq!((four.id, four.voter), (4, true));
    assert_eq!(added.members.len(), 4);
    sim.run_for(ms(500));
    assert_eq!(ids(&membership(&sim).learners), vec![4], "n4 is not running: it cannot catch up, so it only learns");

    sim.start(NodeId(4));
    sim.run_for(ms(3_000));
    let m = membership(&sim);
    assert_eq!((ids(&m.voters), ids(&m.learners)), (vec![1, 2, 3, 4], vec![]), "caught up, n4 votes");

    let removed = change(&mut sim, 2, MemberOp::Remove { id: 1 }).expect("the removal applies");
    assert_eq!(removed.members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 3, 4]);
    sim.run_for(ms(3_000));
    let m = membership(&sim);
    assert_eq!((ids(&m.voters), ids(&m.learners)), (vec![2, 3, 4], vec![]));
    assert_ne!(leader(&sim), NodeId(1));
    assert!(raft(&sim, 4).is_some_and(|r| r.membership() == &m), "n4 has the configuration in force");
}

#[test]
fn a_learner_votes_only_once_promoted() {
    let mut sim = cluster(3);
    change(&mut sim, 1, add(4, false)).expect("the add applies");
    sim.start(NodeId(4));
    sim.run_for(ms(3_000));
    assert_eq!(ids(&membership(&sim).learners), vec![4], "a learner stays a learner");
    let promoted = change(&mut sim, 2, MemberOp::Promote { id: 4 }).expect("the promotion applies");
    assert!(promoted.member.is_some_and(|m| m.voter));
    sim.run_for(ms(1_000));
    assert_eq!(ids(&membership(&sim).voters), vec![1, 2, 3, 4]);
    let again = change(&mut sim, 3, MemberOp::Promote { id: 4 });
    assert_eq!(again, Err(ReplyError::Member(MemberError::NotLearner { id: 4 })));
}

#[test]
fn a_retried_add_adds_one_member() {
    let mut sim = cluster(4);
    let first = change(&mut sim, 1, add(4, true)).expect("the add applies");
    let retry = change(&mut sim, 1, add(4, true)).expect("the retry is answered as the first try");
    assert_eq!(first, retry);
    assert_eq!(retry.members.len(), 4);
}

#[test]
fn a_new_leader_finishes_a_change_its_predecessor_began() {
    let mut sim = cluster(5);
    change(&mut sim, 1, add(4, true)).expect("the add applies");
    sim.run_for(ms(300));
    assert_eq!(ids(&membership(&sim).learners), vec![4], "n4 is down: it only learns");
    let old = leader(&sim);
    sim.crash(old);
    sim.start(NodeId(4));
    sim.run_for(ms(5_000));
    let m = membership(&sim);
    assert_ne!(leader(&sim), old);
    assert!(ids(&m.voters).contains(&4), "the new leader promoted n4: {m:?}");
}
