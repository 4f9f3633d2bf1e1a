//! §7 log compaction (thesis ch. 5): the caller snapshots at an applied
//! index and the core drops the log up to it; a follower that needs the
//! dropped entries gets InstallSnapshot in chunks of at most
//! `snapshot_chunk_bytes_max` bytes (4 in these tests), one in flight; it
//! hands the complete snapshot to its caller and acknowledges it only once
//! installed. Exact messages and `Ready`s.

use crate::common;

use bytes::Bytes;
use common::*;
use haven_raft::{
    CompactError, Entry, HardState, LogPosition, Membership, Message, Raft, ReceivedSnapshot, SnapshotError,
    SnapshotMeta, UsageError,
};
use haven_runtime::Instant;

fn snapshot_meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta { last: pos(index, term), membership: Membership::new(voters(3), vec![]) }
}

fn chunk(meta: &SnapshotMeta, offset: u64, total_bytes: u64, data: &str) -> Message {
    Message::InstallSnapshot { term: 1, meta: meta.clone(), offset, total_bytes, data: data.as_bytes().to_vec() }
}

fn chunk_ack(last: LogPosition, received_bytes: u64) -> Message {
    Message::InstallSnapshotResponse { term: 1, last, received_bytes }
}

/// n1 leads term 1 with entries 1..=4 committed and applied (n2 acknowledged
/// them), n3 never answered, and the log compacted up to 3.
fn compacted_leader() -> (Raft, Instant) {
    let mut n1 = fresh(N1, 3);
    let (_, t) = elect(&mut n1);
    for text in ["a", "b", "c"] {
        n1.propose(text.as_bytes()).unwrap();
    }
    settle(&mut n1, t);
    n1.step(t, N2, accepted(1, 4));
    let r = n1.take_ready();
    assert_eq!(r.committed.len(), 4);
    n1.applied(4).unwrap();
    assert_eq!(n1.compact(3), Ok(snapshot_meta(3, 1)));
    (n1, t)
}

#[test]
fn s7_compaction_drops_applied_entries_and_returns_the_meta_to_store() {
    let (mut n1, _) = compacted_leader();
    assert_eq!((n1.first_index(), n1.entry(3), n1.last_log()), (4, None, pos(4, 1)));
    assert!(n1.entry(4).is_some());
    assert_eq!(n1.compact(5), Err(CompactError::NotApplied { index: 5, applied: 4 }));
    assert_eq!(n1.compact(2), Err(CompactError::AlreadyCompacted { index: 2, snapshot_index: 3 }));
    assert_eq!(n1.compact(3), Ok(snapshot_meta(3, 1)), "compacting at the snapshot again is harmless");
}

#[test]
fn s7_a_follower_needing_compacted_entries_makes_the_leader_ask_for_the_snapshot() {
    let (mut n1, t) = compacted_leader();
    n1.step(t, N3, Message::HeartbeatResponse { term: 1, round: 0 });
    let r = n1.take_ready();
    assert!(r.snapshot_needed, "n3 needs entry 1, which is gone");
    assert!(r.messages.is_empty());
    assert!(!n1.take_ready().snapshot_needed, "asked once");
}

#[test]
fn s7_the_snapshot_goes_in_chunks_one_in_flight_then_replication_resumes_after_it() {
    let (mut n1, t) = compacted_leader();
    n1.step(t, N3, Message::HeartbeatResponse { term: 1, round: 0 });
    n1.take_ready();
    let meta = snapshot_meta(3, 1);
    n1.provide_snapshot(meta.clone(), Bytes::from_static(b"0123456789")).unwrap();
    assert_eq!(n1.take_ready().messages, vec![to(N3, chunk(&meta, 0, 10, "0123"))]);
    assert_eq!(n1.take_ready().messages, vec![], "one chunk in flight");
    n1.step(t, N3, chunk_ack(pos(3, 1), 4));
    assert_eq!(n1.take_ready().messages, vec![to(N3, chunk(&meta, 4, 10, "4567"))]);
    n1.step(t, N3, chunk_ack(pos(3, 1), 8));
    assert_eq!(n1.take_ready().messages, vec![to(N3, chunk(&meta, 8, 10, "89"))]);
    // Installed on n3: its acknowledgement of index 3 resumes appends after the snapshot.
    n1.step(t, N3, accepted(1, 3));
    let append = Message::Append { term: 1, prev: pos(3, 1), entries: vec![command_of(4, "c")], commit: 4 };
    assert_eq!(n1.take_ready().messages, vec![to(N3, append)]);
}

fn command_of(index: u64, text: &str) -> Entry {
    Entry::command(index, 1, text.as_bytes())
}

#[test]
fn s7_a_chunk_is_resent_only_once_a_later_heartbeat_round_is_answered_without_it() {
    let (mut n1, t) = compacted_leader();
    n1.step(t, N3, Message::HeartbeatResponse { term: 1, round: 0 });
    n1.take_ready();
    let meta = snapshot_meta(3, 1);
    n1.provide_snapshot(meta.clone(), Bytes::from_static(b"0123456789")).unwrap();
    n1.take_ready();
    n1.step(t, N3, Message::HeartbeatResponse { term: 1, round: 0 });
    assert_eq!(n1.take_ready().messages, vec![], "that round left before the chunk");
    let beat = n1.next_deadline();
    n1.tick(beat);
    n1.take_ready();
    n1.step(beat, N3, Message::HeartbeatResponse { term: 1, round: 1 });
    assert_eq!(n1.take_ready().messages, vec![to(N3, chunk(&meta, 0, 10, "0123"))], "presumed lost");
}

#[test]
fn s7_provided_snapshots_are_checked_against_the_log() {
    let (mut n1, _) = compacted_leader();
    let bytes = || Bytes::from_static(b"x");
    let stale = snapshot_meta(2, 1);
    assert_eq!(n1.provide_snapshot(stale, bytes()), Err(SnapshotError::Stale { index: 2, first_index: 4 }));
    let future = snapshot_meta(5, 1);
    assert_eq!(n1.provide_snapshot(future, bytes()), Err(SnapshotError::NotCommitted { index: 5, commit: 4 }));
    let wrong_term = snapshot_meta(4, 2);
    let mismatch = SnapshotError::TermMismatch { index: 4, term: 2, log_term: 1 };
    assert_eq!(n1.provide_snapshot(wrong_term, bytes()), Err(mismatch));
    let huge = Bytes::from(vec![0; 65]);
    assert_eq!(
        n1.provide_snapshot(snapshot_meta(3, 1), huge),
        Err(SnapshotError::TooLarge { bytes: 65, bytes_max: 64 })
    );
}

/// n3 follows n1 in term 1 with a log of the given terms, nothing committed.
fn follower_with(terms: &[u64]) -> Raft {
    let mut n3 = restored(N3, 3, HardState { term: 1, vote: None }, terms);
    n3.step(ms(1), N1, Message::Heartbeat { term: 1, commit: 0, round: 1 });
    settle(&mut n3, ms(1));
    n3
}

#[test]
fn s7_a_follower_acknowledges_chunks_and_reports_the_complete_snapshot_once() {
    let mut n3 = follower_with(&[]);
    let meta = snapshot_meta(3, 1);
    n3.step(ms(2), N1, chunk(&meta, 0, 6, "abcd"));
    assert_eq!(settle(&mut n3, ms(2)), vec![to(N1, chunk_ack(pos(3, 1), 4))]);
    n3.step(ms(2), N1, chunk(&meta, 0, 6, "abcd"));
    assert_eq!(settle(&mut n3, ms(2)), vec![to(N1, chunk_ack(pos(3, 1), 4))], "a duplicate changes nothing");
    n3.step(ms(3), N1, chunk(&meta, 4, 6, "ef"));
    let r = n3.take_ready();
    let received = ReceivedSnapshot { meta: meta.clone(), data: b"abcdef".to_vec(), log_kept_after: false };
    assert_eq!((r.snapshot, r.messages), (Some(received), vec![]), "acknowledged only once installed");
    n3.step(ms(3), N1, chunk(&meta, 4, 6, "ef"));
    assert!(n3.take_ready().is_empty(), "a resent last chunk waits for the install too");
}

#[test]
fn s7_the_installed_snapshot_replaces_a_conflicting_log_and_is_acknowledged() {
    let mut n3 = follower_with(&[1, 1]);
    let meta = snapshot_meta(3, 1);
    n3.step(ms(2), N1, chunk(&meta, 0, 2, "ab"));
    let r = n3.take_ready();
    assert_eq!(r.snapshot.map(|s| s.log_kept_after), Some(false), "our log ends before 3");
    n3.step(ms(2), N1, Message::Append { term: 1, prev: pos(2, 1), entries: vec![command(3, 1)], commit: 0 });
    assert!(n3.take_ready().is_empty(), "the log is frozen until the install");
    n3.on_snapshot_installed(&meta).unwrap();
    assert_eq!((n3.first_index(), n3.last_log(), n3.commit_index(), n3.applied_index()), (4, pos(3, 1), 3, 3));
    assert_eq!(settle(&mut n3, ms(3)), vec![to(N1, accepted(1, 3))]);
    assert_eq!(n3.on_snapshot_installed(&meta), Err(UsageError::NoSnapshotToInstall { index: 3 }));
}

#[test]
fn s7_entries_after_the_snapshot_are_kept_if_the_log_holds_its_last_entry() {
    let mut n3 = follower_with(&[1, 1, 1, 1, 1]);
    let meta = snapshot_meta(3, 1);
    n3.step(ms(2), N1, chunk(&meta, 0, 2, "ab"));
    assert_eq!(n3.take_ready().snapshot.map(|s| s.log_kept_after), Some(true));
    n3.on_snapshot_installed(&meta).unwrap();
    assert_eq!((n3.first_index(), n3.last_log()), (4, pos(5, 1)));
    assert_eq!(n3.entry(5), Some(&command(5, 1)));
}

#[test]
fn s7_the_install_must_come_after_every_entry_handed_out_is_applied() {
    let mut n3 = follower_with(&[1]);
    n3.step(ms(2), N1, Message::Heartbeat { term: 1, commit: 1, round: 2 });
    assert_eq!(n3.take_ready().committed, vec![command(1, 1)]);
    let meta = snapshot_meta(3, 1);
    n3.step(ms(2), N1, chunk(&meta, 0, 2, "ab"));
    n3.take_ready();
    let early = UsageError::InstalledBeforeApplied { applied: 0, handed_out: 1 };
    assert_eq!(n3.on_snapshot_installed(&meta), Err(early));
    n3.applied(1).unwrap();
    assert_eq!(n3.on_snapshot_installed(&meta), Ok(()));
}

#[test]
fn s7_a_snapshot_within_the_commit_index_is_acknowledged_with_it() {
    let mut n3 = follower_with(&[1, 1, 1, 1, 1]);
    n3.step(ms(2), N1, Message::Heartbeat { term: 1, commit: 5, round: 2 });
    settle(&mut n3, ms(2));
    n3.step(ms(2), N1, chunk(&snapshot_meta(3, 1), 0, 2, "ab"));
    let r = n3.take_ready();
    assert_eq!((r.snapshot, r.messages), (None, vec![to(N1, accepted(1, 5))]));
}

#[test]
fn s7_malformed_chunks_are_counted_and_dropped() {
    let mut n3 = follower_with(&[]);
    let meta = snapshot_meta(3, 1);
    let bad = [
        chunk(&meta, 0, 65, "ab"),               // beyond snapshot_bytes_max
        chunk(&meta, u64::MAX, 4, "ab"),         // offset overflows
        chunk(&meta, 3, 4, "ab"),                // past the end
        chunk(&snapshot_meta(3, 2), 0, 2, "ab"), // a term above the sender's
        chunk(&SnapshotMeta { last: pos(0, 0), ..meta.clone() }, 0, 2, "ab"), // covers nothing
    ];
    for msg in bad {
        n3.step(ms(2), N1, msg);
    }
    assert_eq!(n3.counters().messages_invalid, 5);
    assert!(n3.take_ready().is_empty());
}
