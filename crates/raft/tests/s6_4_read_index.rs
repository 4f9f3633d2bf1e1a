//! Thesis §6.4 linearizable reads by ReadIndex: the leader takes its commit
//! index (only once it committed an entry of its term), confirms it still
//! leads with a heartbeat round a majority answers, and only then reports
//! the read; reads fail when leadership ends. Exact messages and `Ready`s.

use crate::common;

use common::*;
use haven_raft::{AppendOutcome, ConflictHint, Message, Raft, ReadError, ReadState, Role, Setup};

fn beat(term: u64, commit: u64, round: u64) -> Message {
    Message::Heartbeat { term, commit, round }
}

fn beat_ack(term: u64, round: u64) -> Message {
    Message::HeartbeatResponse { term, round }
}

#[test]
fn s6_4_a_read_is_reported_only_after_a_majority_answers_a_round_sent_after_it() {
    let (mut n1, t) = caught_up_leader();
    n1.read_index(7).unwrap();
    let r = n1.take_ready();
    assert_eq!(r.messages, vec![to(N2, beat(1, 1, 1)), to(N3, beat(1, 1, 1))], "a round starts at once");
    assert_eq!(r.read_states, vec![], "not confirmed by the leader alone");
    n1.step(t, N2, beat_ack(1, 1));
    let r = n1.take_ready();
    assert_eq!(r.read_states, vec![ReadState { ctx: 7, index: 1 }], "n1 and n2 are a majority");
    n1.step(t, N3, beat_ack(1, 1));
    assert!(n1.take_ready().read_states.is_empty(), "reported once");
}

#[test]
fn s6_4_an_answer_to_an_earlier_round_does_not_confirm_a_later_read() {
    let (mut n1, t) = caught_up_leader();
    let beat_at = n1.next_deadline();
    n1.tick(beat_at);
    assert_eq!(n1.take_ready().messages, vec![to(N2, beat(1, 1, 1)), to(N3, beat(1, 1, 1))]);
    n1.propose(b"w").unwrap();
    n1.step(t, N2, accepted(1, 2));
    n1.step(t, N3, accepted(1, 2));
    settle(&mut n1, t);
    assert_eq!(n1.commit_index(), 2);
    n1.read_index(8).unwrap();
    let r = n1.take_ready();
    assert_eq!(r.messages, vec![to(N2, beat(1, 2, 2)), to(N3, beat(1, 2, 2))]);
    n1.step(beat_at, N2, beat_ack(1, 1));
    n1.step(beat_at, N3, beat_ack(1, 1));
    assert_eq!(n1.take_ready().read_states, vec![], "round 1 left before the read arrived");
    n1.step(beat_at, N3, beat_ack(1, 2));
    assert_eq!(n1.take_ready().read_states, vec![ReadState { ctx: 8, index: 2 }], "the index includes the write");
}

#[test]
fn s6_4_reads_in_one_batch_share_a_round_and_keep_their_order() {
    let (mut n1, t) = caught_up_leader();
    n1.read_index(1).unwrap();
    n1.read_index(2).unwrap();
    let r = n1.take_ready();
    assert_eq!(r.messages.len(), 2, "one heartbeat per follower for both reads");
    n1.step(t, N3, beat_ack(1, 1));
    let expected = vec![ReadState { ctx: 1, index: 1 }, ReadState { ctx: 2, index: 1 }];
    assert_eq!(n1.take_ready().read_states, expected);
}

#[test]
fn s6_4_a_new_leader_takes_the_read_index_only_after_committing_an_entry_of_its_term() {
    // n1 inherits entries 1..=2 of term 1 whose commit it does not know.
    let mut n1 = restored(N1, 3, haven_raft::HardState { term: 1, vote: None }, &[1, 1]);
    let (_, t) = elect(&mut n1);
    assert_eq!((n1.term(), n1.commit_index()), (2, 0));
    n1.read_index(5).unwrap();
    let r = n1.take_ready();
    assert!(r.messages.iter().all(|e| !matches!(e.msg, Message::Heartbeat { .. })), "no round before the index");
    // n2 holds everything: the no-op at 3 commits, and the read takes index 3.
    n1.step(t, N2, accepted(2, 3));
    let r = n1.take_ready();
    assert_eq!(n1.commit_index(), 3);
    assert_eq!(r.messages, vec![to(N2, beat(2, 3, 1)), to(N3, beat(2, 0, 1))], "the round starts after the commit");
    assert_eq!(r.read_states, vec![]);
    n1.step(t, N2, beat_ack(2, 1));
    assert_eq!(n1.take_ready().read_states, vec![ReadState { ctx: 5, index: 3 }]);
}

#[test]
fn s6_4_step_down_fails_every_pending_read() {
    let (mut n1, t) = caught_up_leader();
    n1.read_index(1).unwrap();
    n1.take_ready();
    n1.read_index(2).unwrap();
    let stale = AppendOutcome::Rejected { prev_index: 0, hint: ConflictHint::LogTooShort { last_index: 0 } };
    n1.step(t, N3, Message::AppendResponse { term: 2, outcome: stale });
    let r = n1.take_ready();
    assert_eq!((n1.role(), r.read_states, r.reads_failed), (Role::Follower, vec![], vec![1, 2]));
    n1.step(t, N2, beat_ack(1, 1));
    assert!(n1.take_ready().read_states.is_empty(), "an answer to the old term confirms nothing");
}

#[test]
fn s6_4_a_follower_refuses_reads_with_the_leader_hint() {
    let mut n2 = fresh(N2, 3);
    assert_eq!(n2.read_index(1), Err(ReadError::NotLeader { leader_hint: None }));
    n2.step(ms(1), N3, beat(1, 0, 1));
    assert_eq!(n2.read_index(1), Err(ReadError::NotLeader { leader_hint: Some(N3) }));
}

#[test]
fn s6_4_reads_beyond_reads_pending_max_are_refused_until_reported() {
    let (mut n1, t) = caught_up_leader();
    for ctx in 0..4 {
        n1.read_index(ctx).unwrap();
    }
    assert_eq!(n1.read_index(4), Err(ReadError::Backpressure { pending: 4, pending_max: 4 }));
    n1.take_ready();
    n1.step(t, N2, beat_ack(1, 1));
    assert_eq!(n1.read_index(4), Err(ReadError::Backpressure { pending: 4, pending_max: 4 }), "confirmed, not taken");
    assert_eq!(n1.take_ready().read_states.len(), 4);
    assert_eq!(n1.read_index(4), Ok(()));
}

#[test]
fn s6_4_an_answer_to_a_round_never_sent_is_invalid() {
    let (mut n1, t) = caught_up_leader();
    n1.read_index(1).unwrap();
    n1.take_ready();
    let invalid = n1.counters().messages_invalid;
    n1.step(t, N2, beat_ack(1, 9));
    assert_eq!(n1.counters().messages_invalid, invalid + 1);
    assert!(n1.take_ready().read_states.is_empty());
}

#[test]
fn s6_4_a_single_voter_confirms_reads_by_itself() {
    let setup = Setup { id: N1, voters: vec![N1], config: config() };
    let mut n1 = Raft::new(setup, rng(1), ms(0)).unwrap();
    let t = n1.next_deadline();
    n1.tick(t);
    settle(&mut n1, t);
    assert_eq!((n1.role(), n1.commit_index()), (Role::Leader, 1));
    n1.read_index(3).unwrap();
    let r = n1.take_ready();
    assert_eq!((r.messages, r.read_states), (vec![], vec![ReadState { ctx: 3, index: 1 }]));
}

#[test]
fn s6_4_a_deposed_leader_that_missed_the_election_fails_the_read_instead_of_answering_stale() {
    // n1 still believes it leads term 1; n2 and n3 moved on to term 2 and
    // committed index 2 there, which a read at n1's commit index 1 would miss.
    let (mut n1, t) = caught_up_leader();
    let mut n2 = restored(N2, 3, haven_raft::HardState { term: 2, vote: Some(N2) }, &[1, 2]);
    n1.read_index(9).unwrap();
    let round: Vec<_> = n1.take_ready().messages.into_iter().filter(|e| e.to == N2).collect();
    assert_eq!(round, vec![to(N2, beat(1, 1, 1))]);
    n2.step(t, N1, beat(1, 1, 1));
    let answer = settle(&mut n2, t);
    assert_eq!(answer, vec![to(N1, beat_ack(2, 0))], "a stale leader is told the newer term, round 0");
    n1.step(t, N2, answer[0].msg.clone());
    let r = n1.take_ready();
    assert_eq!((n1.role(), r.read_states, r.reads_failed), (Role::Follower, vec![], vec![9]));
}
