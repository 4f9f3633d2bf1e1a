//! Thesis §3.10 leadership transfer: the leader stops accepting proposals,
//! brings the target up to date, sends TimeoutNow; the target runs at once
//! without pre-vote and voters grant it despite the old leader's lease; the
//! leader gives up after an election timeout. Exact messages and errors.

use crate::common;

use common::*;
use haven_raft::{HardState, Message, ProposeError, Role, TransferError};
use haven_runtime::NodeId;
use std::time::Duration;

fn transfer_vote(term: u64, index: u64, last_term: u64) -> Message {
    Message::Vote { term, last_log: pos(index, last_term), transfer: true }
}

#[test]
fn s3_10_a_caught_up_target_is_sent_timeout_now_at_once_and_proposals_wait() {
    let (mut n1, _) = caught_up_leader();
    assert_eq!(n1.transfer_leader(N2), Ok(()));
    assert_eq!(n1.take_ready().messages, vec![to(N2, Message::TimeoutNow { term: 1 })]);
    assert_eq!(n1.propose(b"x"), Err(ProposeError::Transferring { to: N2 }));
    assert_eq!(n1.transfer_leader(N2), Ok(()), "asking again for the same target is harmless");
    assert_eq!(n1.take_ready().messages, vec![], "TimeoutNow goes once");
}

#[test]
fn s3_10_a_lagging_target_is_brought_up_to_date_before_timeout_now() {
    let (mut n1, t) = caught_up_leader();
    n1.propose(b"a").unwrap();
    settle(&mut n1, t);
    n1.step(t, N3, accepted(1, 2));
    n1.transfer_leader(N2).unwrap();
    assert_eq!(n1.take_ready().messages, vec![], "n2 lacks entry 2");
    n1.step(t, N2, accepted(1, 2));
    assert_eq!(n1.take_ready().messages, vec![to(N2, Message::TimeoutNow { term: 1 })]);
}

#[test]
fn s3_10_the_target_runs_at_once_without_pre_vote() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1]);
    n2.step(ms(10), N1, Message::Heartbeat { term: 1, commit: 1, round: 1 });
    settle(&mut n2, ms(10));
    n2.step(ms(11), N1, Message::TimeoutNow { term: 1 });
    let r = n2.take_ready();
    assert_eq!(n2.role(), Role::Candidate);
    let persist = r.persist.expect("the new term and vote");
    assert_eq!(persist.hard_state, Some(HardState { term: 2, vote: Some(N2) }));
    assert_eq!(r.messages, vec![], "vote requests wait for the durable term and vote");
    n2.on_persisted(ms(11), persist.id).unwrap();
    assert_eq!(n2.take_ready().messages, vec![to(N1, transfer_vote(2, 1, 1)), to(N3, transfer_vote(2, 1, 1))]);
}

#[test]
fn s3_10_voters_grant_a_transfer_vote_within_the_leader_lease_but_ignore_a_plain_one() {
    let mut n3 = restored(N3, 3, HardState { term: 1, vote: None }, &[1]);
    n3.step(ms(10), N1, Message::Heartbeat { term: 1, commit: 1, round: 1 });
    settle(&mut n3, ms(10));
    n3.step(ms(20), N2, Message::Vote { term: 2, last_log: pos(1, 1), transfer: false });
    assert_eq!((settle(&mut n3, ms(20)), n3.term(), n3.counters().votes_ignored_in_lease), (vec![], 1, 1));
    n3.step(ms(21), N2, transfer_vote(2, 1, 1));
    let granted = Message::VoteResponse { term: 2, granted: true };
    assert_eq!(settle(&mut n3, ms(21)), vec![to(N2, granted)]);
    assert_eq!(n3.hard_state(), HardState { term: 2, vote: Some(N2) });
}

#[test]
fn s3_10_the_old_leader_grants_the_transfer_vote_and_steps_down() {
    let (mut n1, t) = caught_up_leader();
    n1.transfer_leader(N2).unwrap();
    n1.take_ready();
    n1.step(t, N2, transfer_vote(2, 1, 1));
    assert_eq!((n1.role(), n1.term()), (Role::Follower, 2));
    assert_eq!(settle(&mut n1, t), vec![to(N2, Message::VoteResponse { term: 2, granted: true })]);
    assert_eq!(n1.propose(b"x"), Err(ProposeError::NotLeader { leader_hint: None }));
}

#[test]
fn s3_10_timeout_now_is_ignored_from_anyone_but_our_leader_and_when_stale() {
    let mut n2 = restored(N2, 3, HardState { term: 2, vote: None }, &[1]);
    n2.step(ms(1), N1, Message::Heartbeat { term: 2, commit: 1, round: 1 });
    settle(&mut n2, ms(1));
    n2.step(ms(2), N3, Message::TimeoutNow { term: 2 });
    n2.step(ms(2), N1, Message::TimeoutNow { term: 1 });
    assert_eq!((n2.role(), n2.term()), (Role::Follower, 2));
    assert_eq!(n2.take_ready().persist, None);
}

#[test]
fn s3_10_the_transfer_is_abandoned_after_an_election_timeout() {
    let (mut n1, t) = caught_up_leader();
    n1.propose(b"a").unwrap();
    settle(&mut n1, t);
    n1.transfer_leader(N2).unwrap();
    let give_up = t + Duration::from_millis(200);
    let mut now = t;
    while now < give_up {
        // n3 keeps answering, so check-quorum keeps n1 leading.
        n1.step(now, N3, Message::HeartbeatResponse { term: 1, round: 0 });
        now = n1.next_deadline().min(give_up);
        assert_eq!(n1.propose(b"x"), Err(ProposeError::Transferring { to: N2 }), "at {now}");
        n1.tick(now);
        settle(&mut n1, now);
    }
    assert_eq!(n1.role(), Role::Leader);
    assert_eq!(n1.propose(b"b"), Ok(3), "proposals are accepted again");
    n1.step(now, N2, accepted(1, 3));
    assert!(n1.take_ready().messages.iter().all(|e| e.msg != Message::TimeoutNow { term: 1 }), "no late TimeoutNow");
}

#[test]
fn s3_10_transfers_are_refused_off_the_leader_to_non_voters_and_while_another_runs() {
    let mut n2 = fresh(N2, 3);
    assert_eq!(n2.transfer_leader(N3), Err(TransferError::NotLeader { leader_hint: None }));
    let (mut n1, _) = caught_up_leader();
    assert_eq!(n1.transfer_leader(N1), Err(TransferError::NotAVoter { node: N1 }));
    assert_eq!(n1.transfer_leader(NodeId(9)), Err(TransferError::NotAVoter { node: NodeId(9) }));
    n1.transfer_leader(N3).unwrap();
    assert_eq!(n1.transfer_leader(N2), Err(TransferError::InProgress { to: N3 }));
}
