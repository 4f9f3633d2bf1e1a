//! §5.3 log replication: batching, pipelining within the in-flight window,
//! acknowledgements released only after the entries are durable, the
//! consistency check with fast backtracking, conflict truncation, and the
//! commit index reaching followers and the state machine.

use crate::common;

use common::*;
use haven_raft::{
    AppendOutcome, Config, ConflictHint, ENTRY_OVERHEAD_BYTES, Entry, HardState, Message, PersistId, ProposeError,
    Raft, Setup, UsageError,
};
use haven_runtime::{Instant, NodeId};
use std::time::Duration;

fn rejected(term: u64, prev_index: u64, hint: ConflictHint) -> Message {
    Message::AppendResponse { term, outcome: AppendOutcome::Rejected { prev_index, hint } }
}

fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message::Append { term, prev: pos(prev.0, prev.1), entries, commit }
}

fn cmd(index: u64, term: u64, text: &str) -> Entry {
    Entry::command(index, term, text.as_bytes())
}

fn propose_all(raft: &mut Raft, texts: &[&str]) {
    for text in texts {
        raft.propose(text.as_bytes()).expect("leader accepts");
    }
}

#[test]
fn proposals_between_readies_travel_in_one_batch_per_follower() {
    let (mut n1, _) = caught_up_leader();
    propose_all(&mut n1, &["a", "b", "c"]);
    let r = n1.take_ready();
    let batch = vec![cmd(2, 1, "a"), cmd(3, 1, "b"), cmd(4, 1, "c")];
    let msg = append(1, (1, 1), batch.clone(), 1);
    assert_eq!(r.messages, vec![to(N2, msg.clone()), to(N3, msg)]);
    assert_eq!(r.persist.map(|p| p.entries), Some(batch), "the leader persists what it sends, in parallel");
}

#[test]
fn batches_respect_entries_per_append_max_and_the_inflight_window() {
    let (mut n1, t) = caught_up_leader();
    propose_all(&mut n1, &["a", "b", "c", "d", "e", "f", "g"]);
    let to_n2: Vec<Message> = n1.take_ready().messages.into_iter().filter(|e| e.to == N2).map(|e| e.msg).collect();
    let first = vec![cmd(2, 1, "a"), cmd(3, 1, "b"), cmd(4, 1, "c")];
    let second = vec![cmd(5, 1, "d"), cmd(6, 1, "e"), cmd(7, 1, "f")];
    assert_eq!(to_n2, vec![append(1, (1, 1), first, 1), append(1, (4, 1), second, 1)], "two in flight, not three");
    n1.step(t, N2, accepted(1, 4));
    let r = n1.take_ready();
    assert_eq!(r.messages, vec![to(N2, append(1, (7, 1), vec![cmd(8, 1, "g")], 1))], "an ack reopens the window");
}

#[test]
fn batches_respect_append_bytes_max_but_always_carry_one_entry() {
    let config = Config { append_bytes_max: 2 * (ENTRY_OVERHEAD_BYTES + 2), ..config() };
    let (mut n1, _) = caught_up_leader_with(config);
    propose_all(&mut n1, &["a", "b", "a much longer command than the limit", "c"]);
    let to_n2: Vec<Vec<u64>> = n1
        .take_ready()
        .messages
        .into_iter()
        .filter(|e| e.to == N2)
        .map(|e| match e.msg {
            Message::Append { entries, .. } => entries.iter().map(|e| e.index).collect(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(to_n2, vec![vec![2, 3], vec![4]], "window of two: the oversized entry goes alone");
}

#[test]
fn a_follower_acknowledges_only_after_the_entries_are_durable() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![cmd(1, 1, "x"), cmd(2, 1, "y")], 0));
    let r = n2.take_ready();
    let persist = r.persist.expect("term and entries to persist");
    assert_eq!(persist.hard_state, Some(HardState { term: 1, vote: None }));
    assert_eq!(persist.entries, vec![cmd(1, 1, "x"), cmd(2, 1, "y")]);
    assert_eq!(r.messages, vec![], "no ack before the fsync");
    n2.on_persisted(ms(2), persist.id).unwrap();
    assert_eq!(n2.take_ready().messages, vec![to(N1, accepted(1, 2))]);
}

#[test]
fn a_follower_rejects_a_gap_with_its_last_index() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1, 1]);
    n2.step(ms(1), N1, append(1, (5, 1), vec![cmd(6, 1, "z")], 0));
    let hint = ConflictHint::LogTooShort { last_index: 2 };
    assert_eq!(settle(&mut n2, ms(1)), vec![to(N1, rejected(1, 5, hint))]);
    assert_eq!(n2.last_log(), pos(2, 1));
}

#[test]
fn a_follower_rejects_a_term_mismatch_with_the_term_and_where_it_starts() {
    let mut n2 = restored(N2, 3, HardState { term: 2, vote: None }, &[1, 2, 2, 2]);
    n2.step(ms(1), N1, append(3, (4, 3), vec![], 0));
    let hint = ConflictHint::TermMismatch { term: 2, first_index: 2 };
    assert_eq!(settle(&mut n2, ms(1)), vec![to(N1, rejected(3, 4, hint))]);
}

/// n1 restarted with terms [1, 1, 1, 4, 4] and elected in term 5.
fn leader_with_history() -> (Raft, Instant) {
    let mut n1 = restored(N1, 3, HardState { term: 4, vote: None }, &[1, 1, 1, 4, 4]);
    let (probes, t) = elect(&mut n1);
    let probe = append(5, (5, 4), vec![Entry::noop(6, 5)], 0);
    assert_eq!(probes, vec![to(N2, probe.clone()), to(N3, probe)]);
    (n1, t)
}

#[test]
fn the_leader_skips_a_whole_term_the_follower_does_not_share() {
    let (mut n1, t) = leader_with_history();
    // n2 holds term 2 from index 2 on, which n1 never had: probe before it.
    n1.step(t, N2, rejected(5, 5, ConflictHint::TermMismatch { term: 2, first_index: 2 }));
    // n3 holds term 1 at index 5: n1's last term-1 entry is 3, probe after it.
    n1.step(t, N3, rejected(5, 5, ConflictHint::TermMismatch { term: 1, first_index: 1 }));
    let r = n1.take_ready();
    let to_n2 = append(5, (1, 1), vec![command(2, 1), command(3, 1), command(4, 4)], 0);
    let to_n3 = append(5, (3, 1), vec![command(4, 4), command(5, 4), Entry::noop(6, 5)], 0);
    assert_eq!(r.messages, vec![to(N2, to_n2), to(N3, to_n3)]);
}

#[test]
fn the_leader_jumps_to_the_end_of_a_short_log_and_ignores_stale_rejections() {
    let (mut n1, t) = leader_with_history();
    n1.step(t, N2, rejected(5, 5, ConflictHint::LogTooShort { last_index: 3 }));
    n1.step(t, N2, rejected(5, 5, ConflictHint::LogTooShort { last_index: 0 }));
    let r = n1.take_ready();
    let probe = append(5, (3, 1), vec![command(4, 4), command(5, 4), Entry::noop(6, 5)], 0);
    assert_eq!(r.messages, vec![to(N2, probe)], "the duplicate rejection answers a superseded probe");
}

#[test]
fn a_conflicting_suffix_is_truncated_and_replaced_from_the_conflict_on() {
    let mut n2 = restored(N2, 3, HardState { term: 2, vote: None }, &[1, 1, 2, 2]);
    let fresh_entries = vec![cmd(3, 3, "p"), cmd(4, 3, "q"), cmd(5, 3, "r")];
    n2.step(ms(1), N1, append(3, (2, 1), fresh_entries.clone(), 0));
    let r = n2.take_ready();
    let persist = r.persist.expect("the new suffix");
    assert_eq!(persist.entries, fresh_entries, "the WAL drops its entries from index 3 and writes these");
    n2.on_persisted(ms(1), persist.id).unwrap();
    assert_eq!(settle(&mut n2, ms(1)), vec![to(N1, accepted(3, 5))]);
    let terms: Vec<u64> = (1..=5).map(|i| n2.entry(i).unwrap().term).collect();
    assert_eq!(terms, vec![1, 1, 3, 3, 3]);
}

#[test]
fn a_delayed_duplicate_append_changes_nothing_and_acks_only_what_it_proves() {
    let mut n2 = restored(N2, 3, HardState { term: 1, vote: None }, &[1, 1, 1]);
    n2.step(ms(1), N1, append(1, (0, 0), vec![command(1, 1), command(2, 1)], 0));
    let r = n2.take_ready();
    assert_eq!(r.persist, None, "nothing new");
    assert_eq!(r.messages, vec![to(N1, accepted(1, 2))], "entry 3 was not in this message, so it is not acked");
    assert_eq!(n2.last_log(), pos(3, 1), "a stale append never truncates matching entries");
}

#[test]
fn commit_travels_to_followers_bounded_by_what_they_hold() {
    let (mut n1, t) = caught_up_leader();
    propose_all(&mut n1, &["a", "b", "c"]);
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 4));
    let r = n1.take_ready();
    assert_eq!(n1.commit_index(), 4);
    assert_eq!(r.committed, vec![cmd(2, 1, "a"), cmd(3, 1, "b"), cmd(4, 1, "c")], "handed out in log order");
    let beat = t + Duration::from_millis(20);
    assert_eq!(n1.next_deadline(), beat);
    n1.tick(beat);
    let heartbeats = n1.take_ready().messages;
    let (to_n2, to_n3) =
        (Message::Heartbeat { term: 1, commit: 4, round: 1 }, Message::Heartbeat { term: 1, commit: 1, round: 1 });
    assert_eq!(heartbeats, vec![to(N2, to_n2), to(N3, to_n3)], "n3 only acknowledged index 1");
}

#[test]
fn a_leader_asked_to_broadcast_its_commit_sends_it_at_once_not_at_the_next_beat() {
    let (mut n1, t) = caught_up_leader();
    propose_all(&mut n1, &["a"]);
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 2));
    assert_eq!(n1.take_ready().committed, vec![cmd(2, 1, "a")]);
    assert!(n1.take_ready().messages.is_empty(), "nothing new to append: followers would wait for the beat");
    n1.broadcast_commit();
    let (to_n2, to_n3) =
        (Message::Heartbeat { term: 1, commit: 2, round: 1 }, Message::Heartbeat { term: 1, commit: 1, round: 1 });
    assert_eq!(n1.take_ready().messages, vec![to(N2, to_n2), to(N3, to_n3)], "bounded by what each holds");
    let mut n2 = fresh(N2, 3);
    n2.broadcast_commit();
    assert!(n2.take_ready().messages.is_empty(), "a follower has no commit to announce");
}

#[test]
fn with_commit_notices_a_follower_that_answered_everything_hears_a_commit_at_once() {
    let setup = Setup { id: N1, voters: voters(3), config: Config { commit_notices: true, ..config() } };
    let mut n1 = Raft::new(setup, rng(1), ms(0)).expect("valid setup");
    let (_, t) = elect(&mut n1);
    n1.step(t, N2, accepted(1, 1));
    n1.step(t, N3, accepted(1, 1));
    let r = n1.take_ready();
    let noop = append(1, (1, 1), vec![], 1);
    assert_eq!(r.messages, vec![to(N2, noop.clone()), to(N3, noop)], "the no-op's commit, told at once");
    propose_all(&mut n1, &["a"]);
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 2));
    let r = n1.take_ready();
    assert_eq!(r.committed, vec![cmd(2, 1, "a")]);
    let notice = append(1, (2, 1), vec![], 2);
    assert_eq!(r.messages, vec![to(N2, notice.clone())], "n2 at once, not at the next beat; n3 has not answered");
    assert!(n1.take_ready().messages.is_empty(), "told once");
    n1.step(t, N3, accepted(1, 2));
    assert_eq!(n1.take_ready().messages, vec![to(N3, notice)], "n3 once it answered: it holds entry 2");
    propose_all(&mut n1, &["b"]);
    let r = n1.take_ready();
    assert!(
        r.messages.iter().all(|e| matches!(&e.msg, Message::Append { entries, .. } if entries.len() == 1)),
        "{r:?}"
    );
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![cmd(1, 1, "x"), cmd(2, 1, "y")], 1));
    n2.take_ready();
    n2.step(ms(2), N1, append(1, (2, 1), vec![], 2));
    assert_eq!((n2.commit_index(), n2.take_ready().committed), (2, vec![cmd(2, 1, "y")]), "the notice commits");
}

#[test]
fn a_follower_learns_commit_from_appends_and_heartbeats_and_hands_entries_out_once() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![cmd(1, 1, "x"), cmd(2, 1, "y")], 1));
    let r = n2.take_ready();
    assert_eq!((n2.commit_index(), r.committed), (1, vec![cmd(1, 1, "x")]));
    n2.step(ms(2), N1, Message::Heartbeat { term: 1, commit: 9, round: 1 });
    let r = n2.take_ready();
    assert_eq!((n2.commit_index(), r.committed), (2, vec![cmd(2, 1, "y")]), "bounded by our log");
    assert_eq!(n2.applied(2), Ok(()));
    assert_eq!(n2.applied(3), Err(UsageError::Applied { index: 3, applied: 2, handed_out: 2 }));
}

#[test]
fn a_follower_learns_a_commit_its_leader_reports_outside_raft_only_while_its_log_ends_in_that_term() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![cmd(1, 1, "x"), cmd(2, 1, "y"), cmd(3, 1, "z")], 1));
    let r = n2.take_ready();
    assert!(r.persist.is_some(), "entries 1..=3 are not durable here yet");
    let deadline = n2.next_deadline();
    assert!(!n2.learn_commit(N3, 1, 3), "n3 does not lead term 1");
    assert!(!n2.learn_commit(N1, 2, 3), "a term we are not in");
    assert!(!n2.learn_commit(N1, 1, 1), "not above our commit");
    assert!(n2.learn_commit(N1, 1, 9));
    let r = n2.take_ready();
    assert_eq!((n2.commit_index(), r.committed), (3, vec![cmd(2, 1, "y"), cmd(3, 1, "z")]), "bounded by our log");
    assert_eq!(n2.next_deadline(), deadline, "a hint is not a heartbeat: the election timer runs on");
    // n3 leads term 2 but has sent no entry yet: our entries of term 1 may
    // not be in its log, so its commit says nothing about them.
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N1, append(1, (0, 0), vec![cmd(1, 1, "x"), cmd(2, 1, "y")], 1));
    n2.step(ms(2), N3, Message::Heartbeat { term: 2, commit: 1, round: 1 });
    assert_eq!(n2.leader(), Some(N3));
    assert!(!n2.learn_commit(N3, 2, 2), "our log ends in term 1");
    n2.step(ms(3), N3, append(2, (1, 1), vec![cmd(2, 2, "w")], 1));
    assert!(n2.learn_commit(N3, 2, 2));
    assert_eq!(n2.commit_index(), 2);
    assert_eq!(n2.entry(2), Some(&cmd(2, 2, "w")), "what commits is n3's entry, which replaced ours");
}

#[test]
fn proposals_are_refused_off_the_leader_and_beyond_the_limits() {
    let mut n2 = fresh(N2, 3);
    n2.step(ms(1), N3, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    assert_eq!(n2.propose(b"x"), Err(ProposeError::NotLeader { leader_hint: Some(N3) }));
    let config = Config { uncommitted_entries_max: 3, ..config() };
    let (mut n1, _) = caught_up_leader_with(config);
    assert_eq!(n1.propose(&[0; 1025]), Err(ProposeError::TooLarge { bytes: 1025, bytes_max: 1024 }));
    propose_all(&mut n1, &["a", "b", "c"]);
    assert_eq!(n1.propose(b"d"), Err(ProposeError::Backpressure { uncommitted: 3, uncommitted_max: 3 }));
}

#[test]
fn a_heartbeat_response_reopens_a_window_whose_appends_were_lost() {
    let (mut n1, t) = caught_up_leader();
    propose_all(&mut n1, &["a", "b", "c", "d", "e", "f", "g"]);
    settle(&mut n1, t);
    // Both appends to n2 are lost; n2 still answers heartbeats.
    n1.step(t, N2, Message::HeartbeatResponse { term: 1, round: 0 });
    let r = n1.take_ready();
    assert_eq!(r.messages, vec![to(N2, append(1, (7, 1), vec![cmd(8, 1, "g")], 1))]);
    // n2 rejects it for the gap; n1 falls back to probing from n2's match.
    n1.step(t, N2, rejected(1, 7, ConflictHint::LogTooShort { last_index: 1 }));
    let r = n1.take_ready();
    let probe = append(1, (1, 1), vec![cmd(2, 1, "a"), cmd(3, 1, "b"), cmd(4, 1, "c")], 1);
    assert_eq!(r.messages, vec![to(N2, probe)]);
}

#[test]
fn persist_reports_must_name_an_issued_request() {
    let mut n2 = fresh(N2, 3);
    assert!(n2.on_persisted(ms(0), PersistId(1)).is_err(), "nothing was issued");
    n2.step(ms(1), NodeId(1), append(1, (0, 0), vec![], 0));
    let id = n2.take_ready().persist.expect("the new term").id;
    assert_eq!(n2.on_persisted(ms(1), id), Ok(()));
    assert!(n2.on_persisted(ms(1), id).is_err(), "reported twice");
}
