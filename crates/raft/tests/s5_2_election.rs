//! §5.2 leader election, with pre-vote (§9.6), the leader lease that makes
//! nodes ignore disruptive votes (§4.2.3) and check-quorum: exact messages,
//! persist requests and role changes for each input.

use crate::common;

use common::*;
use haven_raft::{AppendOutcome, HardState, Message, PersistId, PersistRequest, Raft, Role, SoftState};
use std::time::Duration;

fn pre_vote(term: u64, index: u64, last_term: u64) -> Message {
    Message::PreVote { term, last_log: pos(index, last_term) }
}

fn vote(term: u64, index: u64, last_term: u64) -> Message {
    Message::Vote { term, last_log: pos(index, last_term), transfer: false }
}

#[test]
fn election_timeout_is_drawn_from_the_seeded_rng_within_its_range() {
    let deadline = |seed| Raft::new(setup(N1, 3), rng(seed), ms(0)).unwrap().next_deadline();
    let deadlines: Vec<_> = (0..50).map(deadline).collect();
    assert!(deadlines.iter().all(|&d| d >= ms(100) && d < ms(200)), "{deadlines:?}");
    assert_eq!(deadline(7), deadline(7), "same seed, same timeout");
    assert!(deadlines.iter().any(|&d| d != deadlines[0]), "timeouts are randomized");
}

#[test]
fn election_timeout_starts_a_pre_vote_that_changes_no_term() {
    let mut n1 = fresh(N1, 3);
    let deadline = n1.next_deadline();
    n1.tick(deadline - Duration::from_nanos(1));
    assert!(ready(&mut n1).is_empty(), "nothing before the deadline");
    n1.tick(deadline);
    let r = ready(&mut n1);
    assert_eq!(r.messages, vec![to(N2, pre_vote(1, 0, 0)), to(N3, pre_vote(1, 0, 0))]);
    assert_eq!(r.persist, None, "a pre-vote changes nothing durable");
    assert_eq!(r.soft_state, Some(SoftState { role: Role::PreCandidate, term: 0, leader: None }));
}

#[test]
fn pre_vote_majority_starts_an_election_whose_requests_wait_for_the_durable_term() {
    let mut n1 = fresh(N1, 3);
    let t = n1.next_deadline();
    n1.tick(t);
    ready(&mut n1);
    n1.step(t, N2, Message::PreVoteResponse { term: 1, granted: true });
    let r = ready(&mut n1);
    let hard_state = Some(HardState { term: 1, vote: Some(N1) });
    assert_eq!(r.persist, Some(PersistRequest { id: PersistId(1), hard_state, entries: vec![] }));
    assert_eq!(r.messages, vec![], "vote requests wait for term 1 and our own vote to be durable");
    assert_eq!(n1.role(), Role::Candidate);
    n1.on_persisted(t, PersistId(1)).unwrap();
    let r = ready(&mut n1);
    assert_eq!(r.messages, vec![to(N2, vote(1, 0, 0)), to(N3, vote(1, 0, 0))]);
    assert_eq!(n1.role(), Role::Candidate, "own vote alone is not a majority of three");
}

#[test]
fn candidate_with_a_majority_becomes_leader_and_appends_a_noop_at_once() {
    let mut n1 = fresh(N1, 3);
    let t = n1.next_deadline();
    n1.tick(t);
    settle(&mut n1, t);
    n1.step(t, N3, Message::PreVoteResponse { term: 1, granted: true });
    settle(&mut n1, t);
    n1.step(t, N3, Message::VoteResponse { term: 1, granted: true });
    let r = ready(&mut n1);
    let append = Message::Append { term: 1, prev: pos(0, 0), entries: vec![haven_raft::Entry::noop(1, 1)], commit: 0 };
    assert_eq!(r.messages, vec![to(N2, append.clone()), to(N3, append)], "probes carry the no-op before our fsync");
    assert_eq!(r.persist.map(|p| p.entries), Some(vec![haven_raft::Entry::noop(1, 1)]));
    assert_eq!(r.soft_state, Some(SoftState { role: Role::Leader, term: 1, leader: Some(N1) }));
}

#[test]
fn a_node_votes_at_most_once_per_term_even_across_a_restart() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, vote(1, 0, 0));
    n2.step(ms(1), N3, vote(1, 0, 0));
    let r = ready(&mut n2);
    assert_eq!(r.persist.as_ref().and_then(|p| p.hard_state), Some(HardState { term: 1, vote: Some(N1) }));
    assert_eq!(r.messages, vec![], "replies wait for the vote to be durable");
    n2.on_persisted(ms(2), PersistId(1)).unwrap();
    let granted = Message::VoteResponse { term: 1, granted: true };
    let refused = Message::VoteResponse { term: 1, granted: false };
    assert_eq!(ready(&mut n2).messages, vec![to(N1, granted.clone()), to(N3, refused.clone())]);

    let mut restarted = restored(N2, 3, HardState { term: 1, vote: Some(N1) }, &[]);
    restarted.step(ms(3), N3, vote(1, 0, 0));
    restarted.step(ms(3), N1, vote(1, 0, 0));
    assert_eq!(settle(&mut restarted, ms(3)), vec![to(N3, refused), to(N1, granted)], "a retransmit is re-granted");
}

#[test]
fn a_refused_pre_vote_returns_the_node_to_follower_in_the_same_term() {
    let mut n1 = restored(N1, 3, HardState { term: 4, vote: None }, &[]);
    let t = n1.next_deadline();
    n1.tick(t);
    settle(&mut n1, t);
    n1.step(t, N2, Message::PreVoteResponse { term: 4, granted: false });
    assert_eq!(n1.role(), Role::PreCandidate);
    n1.step(t, N3, Message::PreVoteResponse { term: 4, granted: false });
    assert_eq!((n1.role(), n1.term()), (Role::Follower, 4));
    assert_eq!(ready(&mut n1).persist, None);
}

#[test]
fn pre_vote_does_not_disturb_a_follower_that_hears_from_its_leader() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[]);
    n2.step(ms(10), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n2, ms(10));
    // Within the lease (100 ms after the heartbeat): refused with our term, no change.
    n2.step(ms(50), N3, pre_vote(2, 0, 0));
    assert_eq!(settle(&mut n2, ms(50)), vec![to(N3, Message::PreVoteResponse { term: 1, granted: false })]);
    // A real vote request of a higher term is ignored outright (§4.2.3).
    n2.step(ms(60), N3, vote(2, 0, 0));
    assert_eq!(settle(&mut n2, ms(60)), vec![]);
    assert_eq!((n2.term(), n2.leader(), n2.counters().votes_ignored_in_lease), (1, Some(N1), 1));
    // Once the lease ran out the pre-vote is granted, still without a term change.
    n2.step(ms(111), N3, pre_vote(2, 0, 0));
    let r = ready(&mut n2);
    assert_eq!(r.messages, vec![to(N3, Message::PreVoteResponse { term: 2, granted: true })]);
    assert_eq!((r.persist, n2.term()), (None, 1));
}

#[test]
fn a_follower_that_grants_a_pre_vote_gives_the_pre_candidate_a_full_election_timeout() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[]);
    n2.step(ms(10), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n2, ms(10));
    let before = n2.next_deadline();
    assert!(before < ms(210), "drawn at the heartbeat: {before:?}");
    // Refused inside the lease: the timeout runs on.
    n2.step(ms(50), N3, pre_vote(2, 0, 0));
    settle(&mut n2, ms(50));
    assert_eq!(n2.next_deadline(), before);
    // Granted after it: the timeout restarts, so n2 does not campaign
    // against n3 while n3's election runs.
    n2.step(ms(150), N3, pre_vote(2, 0, 0));
    assert_eq!(settle(&mut n2, ms(150)), vec![to(N3, Message::PreVoteResponse { term: 2, granted: true })]);
    assert!(n2.next_deadline() >= ms(250), "{:?}", n2.next_deadline());
    assert_eq!((n2.role(), n2.term()), (Role::Follower, 1));
}

#[test]
fn a_leader_refuses_pre_votes_and_ignores_higher_term_votes_while_it_leads() {
    let mut n1 = fresh(N1, 3);
    let (_, t) = elect(&mut n1);
    n1.step(t, N3, pre_vote(2, 5, 1));
    assert_eq!(settle(&mut n1, t), vec![to(N3, Message::PreVoteResponse { term: 1, granted: false })]);
    n1.step(t, N3, vote(2, 5, 1));
    assert_eq!((n1.role(), n1.term()), (Role::Leader, 1));
}

/// Ticks `raft` at each deadline up to `until`, answering nothing; returns
/// the soft-state changes reported on the way.
fn tick_until(raft: &mut Raft, until: haven_runtime::Instant) -> Vec<SoftState> {
    let mut changes = Vec::new();
    while raft.next_deadline() <= until {
        let t = raft.next_deadline();
        raft.tick(t);
        changes.extend(raft.take_ready().soft_state);
        settle(raft, t);
    }
    changes
}

#[test]
fn check_quorum_steps_down_a_leader_that_hears_from_no_majority() {
    let mut n1 = fresh(N1, 3);
    let (_, t) = elect(&mut n1);
    assert_eq!(tick_until(&mut n1, t + Duration::from_millis(99)), vec![], "one minimum election timeout is allowed");
    let changes = tick_until(&mut n1, t + Duration::from_millis(100));
    assert_eq!(changes, vec![SoftState { role: Role::Follower, term: 1, leader: None }], "same term, no leader");
}

#[test]
fn check_quorum_keeps_a_leader_that_hears_from_a_majority() {
    let mut n1 = fresh(N1, 3);
    let (_, t) = elect(&mut n1);
    for round in 1..=5 {
        n1.step(t + Duration::from_millis(100 * round - 50), N2, Message::HeartbeatResponse { term: 1, round: 0 });
        tick_until(&mut n1, t + Duration::from_millis(100 * round));
        assert_eq!(n1.role(), Role::Leader, "round {round}: n1 and n2 are a majority");
    }
    tick_until(&mut n1, t + Duration::from_millis(600));
    assert_eq!(n1.role(), Role::Follower, "n2 fell silent");
}

#[test]
fn a_higher_term_in_any_reply_makes_a_leader_a_follower_of_that_term() {
    let mut n1 = fresh(N1, 3);
    let (_, t) = elect(&mut n1);
    let stale =
        AppendOutcome::Rejected { prev_index: 0, hint: haven_raft::ConflictHint::LogTooShort { last_index: 0 } };
    n1.step(t, N2, Message::AppendResponse { term: 3, outcome: stale });
    assert_eq!((n1.role(), n1.term(), n1.leader()), (Role::Follower, 3, None));
    let r = ready(&mut n1);
    assert_eq!(r.persist.and_then(|p| p.hard_state), Some(HardState { term: 3, vote: None }));
}

#[test]
fn a_stale_leader_is_told_the_newer_term_and_changes_nothing() {
    let mut n2 = restored(N2, 3, HardState { term: 3, vote: None }, &[1]);
    n2.step(ms(1), N1, Message::Heartbeat { term: 2, commit: 1, round: 1 });
    n2.step(ms(1), N1, Message::Append { term: 2, prev: pos(1, 1), entries: vec![command(2, 2)], commit: 1 });
    let r = ready(&mut n2);
    let newer = Message::HeartbeatResponse { term: 3, round: 0 };
    assert_eq!(r.messages, vec![to(N1, newer.clone()), to(N1, newer)]);
    assert_eq!((r.persist, n2.last_log(), n2.commit_index(), n2.leader()), (None, pos(1, 1), 0, None));
}

#[test]
fn a_candidate_yields_to_a_leader_of_its_own_term() {
    let mut n1 = fresh(N1, 3);
    let t = n1.next_deadline();
    n1.tick(t);
    settle(&mut n1, t);
    n1.step(t, N2, Message::PreVoteResponse { term: 1, granted: true });
    settle(&mut n1, t);
    assert_eq!(n1.role(), Role::Candidate);
    n1.step(t, N3, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    assert_eq!((n1.role(), n1.term(), n1.leader()), (Role::Follower, 1, Some(N3)));
    assert_eq!(settle(&mut n1, t), vec![to(N3, Message::HeartbeatResponse { term: 1, round: 1 })]);
}
