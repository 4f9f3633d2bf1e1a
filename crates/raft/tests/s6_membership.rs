//! §6 cluster membership changes (thesis ch. 4): learners (§4.2.1) get the
//! log but never vote or count; voter changes go through a joint
//! configuration C_old,new (§4.3) whose decisions need a majority of both
//! halves, then C_new, appended automatically once the joint one commits;
//! a configuration is in force once appended; one change at a time; a
//! removed leader steps down once C_new commits (§4.2.2).

use crate::common;

use common::*;
use haven_raft::{ConfChangeError, Entry, EntryKind, HardState, Membership, Message, Raft, Role, Setup};
use haven_runtime::{Instant, NodeId};

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().copied().map(NodeId).collect()
}

fn members(voters: &[u64], learners: &[u64]) -> Membership {
    Membership::new(ids(voters), ids(learners))
}

fn joint(voters: &[u64], outgoing: &[u64]) -> Membership {
    Membership { voters: ids(voters), voters_outgoing: ids(outgoing), learners: vec![] }
}

fn config_entry(index: u64, term: u64, membership: &Membership) -> Entry {
    Entry::new(index, term, EntryKind::Config(&membership.to_bytes()))
}

/// The caught-up leader of three with learner n4 added at index 2 and
/// replicated everywhere (committed and handed out).
fn leader_with_learner() -> (Raft, Instant) {
    let (mut n1, t) = caught_up_leader();
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3]), ids(&[4])), Ok(2));
    settle(&mut n1, t);
    for peer in [N2, N3, N4] {
        n1.step(t, peer, accepted(1, 2));
    }
    assert_eq!(n1.take_ready().committed, vec![config_entry(2, 1, &members(&[1, 2, 3], &[4]))]);
    (n1, t)
}

#[test]
fn s6_a_learner_is_replicated_to_but_never_counts_toward_commit() {
    let (mut n1, t) = caught_up_leader();
    n1.propose_membership(ids(&[1, 2, 3]), ids(&[4])).unwrap();
    assert_eq!(n1.membership(), &members(&[1, 2, 3], &[4]), "in force once appended, before commit");
    let r = n1.take_ready();
    let probe = Message::Append { term: 1, prev: pos(2, 1), entries: vec![], commit: 1 };
    assert!(r.messages.contains(&to(N4, probe)), "the learner is probed like any follower: {:?}", r.messages);
    n1.on_persisted(t, r.persist.unwrap().id).unwrap();
    n1.step(t, N4, accepted(1, 2));
    assert_eq!(n1.commit_index(), 1, "the leader and a learner are not a majority of n1..n3");
    n1.step(t, N3, accepted(1, 2));
    assert_eq!(n1.commit_index(), 2);
}

#[test]
fn s6_a_node_outside_the_configuration_never_campaigns_and_learns_its_role_from_the_log() {
    // n4 joins a running cluster: it starts with that cluster's voters.
    let mut n4 = Raft::new(Setup { id: N4, voters: voters(3), config: common::config() }, rng(4), ms(0)).unwrap();
    let deadline = n4.next_deadline();
    n4.tick(deadline);
    assert!(n4.take_ready().is_empty(), "not a voter: no pre-vote");
    assert!(n4.next_deadline() > deadline, "and no busy ticking");
    let learner = members(&[1, 2, 3], &[4]);
    let entries = vec![Entry::noop(1, 1), config_entry(2, 1, &learner)];
    n4.step(deadline, N1, Message::Append { term: 1, prev: pos(0, 0), entries, commit: 2 });
    assert_eq!(n4.membership(), &learner);
    assert_eq!(settle(&mut n4, deadline), vec![to(N1, accepted(1, 2))], "a learner acknowledges like a follower");
}

#[test]
fn s6_4_3_adding_a_voter_commits_a_joint_configuration_by_both_majorities_then_c_new() {
    let (mut n1, t) = leader_with_learner();
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3, 4]), vec![]), Ok(3));
    assert_eq!(n1.membership(), &joint(&[1, 2, 3, 4], &[1, 2, 3]));
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 3));
    assert_eq!(n1.commit_index(), 2, "n1, n2: a majority of C_old, not of C_new = n1..n4");
    n1.step(t, N4, accepted(1, 3));
    assert_eq!(n1.commit_index(), 3, "n1, n2, n4: a majority of both");
    assert_eq!(n1.membership(), &members(&[1, 2, 3, 4], &[]), "C_new follows at once");
    assert_eq!(n1.last_log(), pos(4, 1));
    let r = n1.take_ready();
    let c_new = config_entry(4, 1, &members(&[1, 2, 3, 4], &[]));
    assert_eq!(r.persist.map(|p| p.entries), Some(vec![c_new]));
}

#[test]
fn s6_4_2_1_only_caught_up_learners_are_promoted() {
    let (mut n1, t) = leader_with_learner();
    let not_learner = n1.propose_membership(ids(&[1, 2, 3, 5]), vec![]);
    assert_eq!(not_learner, Err(ConfChangeError::NotALearner { node: N5 }));
    for text in ["a", "b", "c"] {
        n1.propose(text.as_bytes()).unwrap();
    }
    settle(&mut n1, t);
    let lagging = ConfChangeError::NotCaughtUp { node: N4, match_index: 2, last_index: 5 };
    assert_eq!(n1.check_promotable(N4), Err(lagging.clone()), "the same rule, asked without proposing");
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3, 4]), vec![]), Err(lagging), "lag 3 > promote_lag_entries_max 2");
    assert_eq!(n1.check_promotable(N5), Err(ConfChangeError::NotALearner { node: N5 }));
    n1.step(t, N4, accepted(1, 3));
    assert_eq!(n1.check_promotable(N4), Ok(()));
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3, 4]), vec![]), Ok(6), "lag 2 is close enough");
}

#[test]
fn s6_one_change_at_a_time() {
    let (mut n1, t) = caught_up_leader();
    n1.propose_membership(ids(&[1, 2, 3]), ids(&[4])).unwrap();
    let busy = n1.propose_membership(ids(&[1, 2, 3]), ids(&[4, 5]));
    assert_eq!(busy, Err(ConfChangeError::InProgress { index: 2 }), "C at 2 is not committed");
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 2));
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3]), ids(&[4])), Err(ConfChangeError::Unchanged));
    let invalid = n1.propose_membership(ids(&[1, 2]), ids(&[2]));
    assert!(matches!(invalid, Err(ConfChangeError::Invalid(_))));
    assert_eq!(n1.propose_membership(ids(&[1, 2, 3]), ids(&[4, 5])), Ok(3));
}

#[test]
fn s6_4_2_2_a_removed_leader_keeps_leading_until_c_new_commits_then_steps_down() {
    let (mut n1, t) = caught_up_leader();
    assert_eq!(n1.propose_membership(ids(&[2, 3]), vec![]), Ok(2));
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 2));
    assert_eq!(n1.commit_index(), 1, "C_new = {{n2, n3}} has only n2");
    n1.step(t, N3, accepted(1, 2));
    assert_eq!((n1.commit_index(), n1.membership()), (2, &members(&[2, 3], &[])));
    assert_eq!(n1.role(), Role::Leader, "it manages C_new without counting itself");
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 3));
    assert_eq!(n1.role(), Role::Leader);
    n1.step(t, N3, accepted(1, 3));
    assert_eq!((n1.commit_index(), n1.role(), n1.leader()), (3, Role::Follower, None));
    let deadline = n1.next_deadline();
    n1.tick(deadline);
    assert_eq!(n1.role(), Role::Follower, "a removed node never campaigns");
}

#[test]
fn s6_a_follower_follows_the_latest_configuration_in_its_log_even_uncommitted() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1]);
    let c = members(&[1, 2, 3], &[4]);
    n2.step(ms(1), N1, Message::Append { term: 1, prev: pos(1, 1), entries: vec![config_entry(2, 1, &c)], commit: 1 });
    assert_eq!(n2.membership(), &c);
    // A leader of term 2 never had it: the entry is replaced, the configuration with it.
    n2.step(ms(2), N3, Message::Append { term: 2, prev: pos(1, 1), entries: vec![Entry::noop(2, 2)], commit: 1 });
    assert_eq!(n2.membership(), &members(&[1, 2, 3], &[]));
}

#[test]
fn s6_4_3_a_candidate_in_a_joint_configuration_needs_both_majorities() {
    let j = joint(&[1, 4, 5], &[1, 2, 3]);
    let durable_log = vec![Entry::noop(1, 1), config_entry(2, 1, &j)];
    let durable = haven_raft::DurableState {
        hard_state: HardState { term: 1, vote: None },
        entries: durable_log,
        ..Default::default()
    };
    let mut n1 = Raft::restore(setup(N1, 3), durable, rng(1), ms(0)).unwrap();
    let t = n1.next_deadline();
    n1.tick(t);
    let asked: Vec<NodeId> = settle(&mut n1, t).into_iter().map(|e| e.to).collect();
    assert_eq!(asked, ids(&[2, 3, 4, 5]), "every voter of both halves");
    for peer in [N2, N3] {
        n1.step(t, peer, Message::PreVoteResponse { term: 2, granted: true });
    }
    assert_eq!(n1.role(), Role::PreCandidate, "all of C_old, but only n1 of C_new");
    n1.step(t, N4, Message::PreVoteResponse { term: 2, granted: true });
    assert_eq!(n1.role(), Role::Candidate);
}

#[test]
fn s6_bad_configuration_entries_from_a_peer_are_refused() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1]);
    let bad = Entry { index: 2, term: 1, payload: vec![3, 0, 0, 0].into() };
    n2.step(ms(1), N1, Message::Append { term: 1, prev: pos(1, 1), entries: vec![bad], commit: 1 });
    assert_eq!((n2.counters().messages_invalid, n2.last_log()), (1, pos(1, 1)));
}
