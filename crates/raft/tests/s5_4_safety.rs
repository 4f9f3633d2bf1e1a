//! §5.4 safety: the election restriction (§5.4.1), the commit rule for
//! entries of earlier terms (§5.4.2, Figure 8), and the durability order
//! that makes both hold across crashes (votes and acks leave only after the
//! state they promise is on disk; the leader counts itself only then).

use crate::common;

use common::*;
use haven_raft::{
    AppendOutcome, Config, ConflictHint, DurableState, Entry, HardState, Message, Raft, RestoreError, Role, Setup,
    SnapshotMeta,
};

fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message::Append { term, prev: pos(prev.0, prev.1), entries, commit }
}

#[test]
fn s5_4_1_votes_go_only_to_logs_at_least_as_up_to_date() {
    // The voter holds terms [1, 2]: last position 2@t2.
    let cases = [((2, 2), true), ((3, 2), true), ((1, 3), true), ((1, 2), false), ((9, 1), false)];
    for ((index, term), granted) in cases {
        let mut voter = restored(N2, 3, HardState { term: 2, vote: None }, &[1, 2]);
        voter.step(ms(1), N1, Message::Vote { term: 3, last_log: pos(index, term), transfer: false });
        let replies = settle(&mut voter, ms(1));
        assert_eq!(replies, vec![to(N1, Message::VoteResponse { term: 3, granted })], "candidate at {index}@t{term}");
        assert_eq!(voter.hard_state().vote, granted.then_some(N1));
    }
}

#[test]
fn s5_4_1_pre_votes_follow_the_same_restriction() {
    for ((index, term), granted) in [((2, 2), true), ((1, 2), false)] {
        let mut voter = restored(N2, 3, HardState { term: 2, vote: None }, &[1, 2]);
        voter.step(ms(1), N1, Message::PreVote { term: 3, last_log: pos(index, term) });
        let reply_term = if granted { 3 } else { 2 };
        let expected = vec![to(N1, Message::PreVoteResponse { term: reply_term, granted })];
        assert_eq!(settle(&mut voter, ms(1)), expected, "candidate at {index}@t{term}");
    }
}

/// Figure 8 with five nodes: n1 restarted holding [1@t1, 2@t2] and won
/// term 4. Entry 2 (term 2) reaches a majority before the no-op of term 4
/// does; counting replicas must not commit it, because a node holding
/// 2@t3 could still be elected and overwrite it (see the next test).
#[test]
fn s5_4_2_figure_8_an_earlier_term_entry_is_committed_only_under_a_current_term_entry() {
    let config = Config { entries_per_append_max: 1, ..config() };
    let durable =
        DurableState { hard_state: HardState { term: 3, vote: None }, entries: log_of(&[1, 2]), ..Default::default() };
    let mut n1 = Raft::restore(Setup { id: N1, voters: voters(5), config }, durable, rng(1), ms(0)).unwrap();
    let (_, t) = elect(&mut n1);
    assert_eq!((n1.term(), n1.last_log()), (4, pos(3, 4)), "the no-op of term 4 is at 3");
    for follower in [N2, N3] {
        let too_short = AppendOutcome::Rejected { prev_index: 2, hint: ConflictHint::LogTooShort { last_index: 1 } };
        n1.step(t, follower, Message::AppendResponse { term: 4, outcome: too_short });
    }
    let r = n1.take_ready();
    let only_entry_2 = append(4, (1, 1), vec![command(2, 2)], 0);
    assert_eq!(r.messages, vec![to(N2, only_entry_2.clone()), to(N3, only_entry_2)]);

    n1.step(t, N2, accepted(4, 2));
    n1.step(t, N3, accepted(4, 2));
    let r = n1.take_ready();
    assert_eq!(n1.commit_index(), 0, "2@t2 is on n1, n2, n3 — a majority — yet not committed");
    assert_eq!(r.committed, vec![]);

    n1.step(t, N2, accepted(4, 3));
    assert_eq!(n1.commit_index(), 0, "3@t4 is on n1 and n2 only");
    n1.step(t, N3, accepted(4, 3));
    assert_eq!(n1.commit_index(), 3, "3@t4 on a majority commits it and everything before it");
    assert_eq!(n1.take_ready().committed, vec![command(1, 1), command(2, 2), Entry::noop(3, 4)]);
}

/// Why the rule above exists: an entry of an earlier term held by a
/// majority can still lose to a later-term entry at the same index.
#[test]
fn s5_4_2_figure_8_an_earlier_term_entry_on_a_majority_can_still_be_overwritten() {
    let mut voter = restored(N2, 5, HardState { term: 4, vote: None }, &[1, 2]);
    voter.step(ms(1), N5, Message::Vote { term: 5, last_log: pos(2, 3), transfer: false });
    assert_eq!(settle(&mut voter, ms(1)), vec![to(N5, Message::VoteResponse { term: 5, granted: true })]);
    voter.step(ms(2), N5, append(5, (1, 1), vec![command(2, 3)], 0));
    assert_eq!(settle(&mut voter, ms(2)), vec![to(N5, accepted(5, 2))]);
    assert_eq!(voter.entry(2), Some(&command(2, 3)), "2@t2 was replaced by 2@t3");
}

#[test]
fn the_leader_counts_itself_toward_commit_only_once_its_own_log_is_durable() {
    let (mut n1, t) = caught_up_leader();
    n1.propose(b"x").unwrap();
    let persist = n1.take_ready().persist.expect("the new entry");
    n1.step(t, N2, accepted(1, 2));
    assert_eq!(n1.commit_index(), 1, "n2 alone is not a majority while n1's fsync is pending");
    n1.on_persisted(t, persist.id).unwrap();
    assert_eq!(n1.commit_index(), 2);
    assert_eq!(n1.take_ready().committed, vec![Entry::command(2, 1, b"x")]);
}

#[test]
fn followers_alone_can_commit_while_the_leader_disk_is_slow() {
    let (mut n1, t) = caught_up_leader();
    n1.propose(b"x").unwrap();
    n1.take_ready();
    n1.step(t, N2, accepted(1, 2));
    n1.step(t, N3, accepted(1, 2));
    assert_eq!(n1.commit_index(), 2, "thesis §10.2.1: the leader's own fsync is not on the path");
}

#[test]
fn a_vote_lost_in_a_crash_was_never_seen_so_voting_again_is_safe() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, Message::Vote { term: 1, last_log: pos(0, 0), transfer: false });
    let r = n2.take_ready();
    assert!(r.persist.is_some() && r.messages.is_empty(), "the grant waits for the vote's persist");
    // Crash before the persist completes: the disk still holds nothing.
    let mut n2 = Raft::restore(setup(N2, 3), DurableState::default(), rng(2), ms(5)).unwrap();
    n2.step(ms(6), N3, Message::Vote { term: 1, last_log: pos(0, 0), transfer: false });
    assert_eq!(settle(&mut n2, ms(6)), vec![to(N3, Message::VoteResponse { term: 1, granted: true })]);
}

#[test]
fn an_append_ack_lost_in_a_crash_promised_nothing() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![command(1, 1)], 0));
    let r = n2.take_ready();
    assert!(r.persist.is_some() && r.messages.is_empty(), "the ack waits for the entry's persist");
    let mut n2 = Raft::restore(setup(N2, 3), DurableState::default(), rng(2), ms(5)).unwrap();
    n2.step(ms(6), N1, Message::Heartbeat { term: 1, commit: 1, round: 1 });
    settle(&mut n2, ms(6));
    assert_eq!(n2.commit_index(), 0, "a heartbeat cannot commit what the restarted node lacks");
}

#[test]
fn committed_entries_are_never_truncated_even_by_a_newer_leader() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1, 1, 1]);
    n2.step(ms(1), N1, Message::Heartbeat { term: 1, commit: 2, round: 1 });
    settle(&mut n2, ms(1));
    n2.step(ms(2), N3, append(2, (1, 1), vec![Entry::command(2, 2, b"other")], 0));
    let replies = settle(&mut n2, ms(2));
    assert_eq!(replies, vec![to(N3, accepted(2, 2))], "below our commit index we answer with it");
    assert_eq!(n2.entry(2), Some(&command(2, 1)));
}

#[test]
fn a_second_leader_in_one_term_is_refused_and_counted() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[]);
    n2.step(ms(1), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n2, ms(1));
    n2.step(ms(2), N3, append(1, (0, 0), vec![command(1, 1)], 0));
    assert_eq!(settle(&mut n2, ms(2)), vec![]);
    assert_eq!((n2.leader(), n2.last_log().index, n2.counters().protocol_violations), (Some(N1), 0, 1));
}

#[test]
fn restore_checks_the_recovered_log() {
    let restore = |entries: Vec<Entry>| {
        let durable = DurableState { hard_state: HardState { term: 5, vote: None }, entries, ..Default::default() };
        Raft::restore(setup(N1, 3), durable, rng(1), ms(0)).map(|_| ())
    };
    assert_eq!(restore(vec![command(2, 1)]), Err(RestoreError::Gap { position: 0, expected: 1, found: 2 }));
    let regression = Err(RestoreError::TermRegression { index: 2, term: 1, previous: 2 });
    assert_eq!(restore(vec![command(1, 2), command(2, 1)]), regression);
    let garbage = Entry { index: 1, term: 1, payload: Vec::new().into() };
    assert!(matches!(restore(vec![garbage]), Err(RestoreError::Payload { index: 1, .. })));
    let duplicates = Setup { voters: vec![N1, N2, N1], ..setup(N1, 3) };
    let restored = Raft::restore(duplicates, DurableState::default(), rng(1), ms(0));
    assert_eq!(restored.err(), Some(RestoreError::Voters { voters: vec![N1, N2, N1] }));
    let nobody = Setup { voters: vec![], ..setup(N1, 3) };
    assert!(matches!(Raft::restore(nobody, DurableState::default(), rng(1), ms(0)), Err(RestoreError::Voters { .. })));
}

#[test]
fn restore_after_a_torn_persist_adopts_the_term_of_the_entries_without_a_vote() {
    // Entries of term 3 reached the disk, the hard state of the same persist did not.
    let durable = DurableState {
        hard_state: HardState { term: 2, vote: Some(N1) },
        snapshot: SnapshotMeta::default(),
        entries: log_of(&[1, 3]),
    };
    let raft = Raft::restore(setup(N2, 3), durable, rng(2), ms(0)).unwrap();
    assert_eq!((raft.hard_state(), raft.role()), (HardState { term: 3, vote: None }, Role::Follower));
}

#[test]
fn restore_from_a_snapshot_starts_the_log_and_commit_after_it() {
    let durable = DurableState {
        hard_state: HardState { term: 2, vote: None },
        snapshot: SnapshotMeta { last: pos(10, 2), ..SnapshotMeta::default() },
        entries: vec![command(11, 2)],
    };
    let mut raft = Raft::restore(setup(N2, 3), durable, rng(2), ms(0)).unwrap();
    assert_eq!((raft.first_index(), raft.commit_index(), raft.last_log()), (11, 10, pos(11, 2)));
    raft.step(ms(1), N1, append(2, (10, 2), vec![command(11, 2), command(12, 2)], 12));
    assert_eq!(raft.take_ready().committed, vec![command(11, 2), command(12, 2)], "nothing at or below 10");
}
