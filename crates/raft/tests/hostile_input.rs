//! No input a peer can send makes the core panic, and the core's own
//! invariants hold whatever arrives: seeded random messages (any term,
//! index, sender, garbage payloads) interleaved with ticks, proposals and
//! persists, against followers, candidates and leaders.

use crate::common;

use common::*;
use haven_raft::{AppendOutcome, ConflictHint, Entry, HardState, LogPosition, Message, Raft, Role, SnapshotMeta};
use haven_runtime::{Instant, NodeId};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// What values the generator aims near: the subject's term and log end.
#[derive(Clone, Copy)]
struct Near {
    term: u64,
    last_log: LogPosition,
}

/// Mostly near `base`, sometimes anywhere small, rarely the extremes.
fn around(rng: &mut ChaCha8Rng, base: u64) -> u64 {
    match rng.random_range(0..20) {
        0 => u64::MAX,
        1 => u64::MAX >> 1,
        2..6 => rng.random_range(0..12),
        _ => base.saturating_sub(1).saturating_add(rng.random_range(0..3)),
    }
}

fn position(rng: &mut ChaCha8Rng, near: Near) -> LogPosition {
    LogPosition::new(around(rng, near.last_log.index), around(rng, near.last_log.term))
}

fn entries(rng: &mut ChaCha8Rng, prev: LogPosition, term: u64) -> Vec<Entry> {
    let contiguous = rng.random_bool(0.8);
    (0..rng.random_range(0..4u64))
        .map(|i| {
            let index = if contiguous { prev.index.wrapping_add(i + 1) } else { around(rng, prev.index) };
            let entry_term = if contiguous { prev.term.max(term) } else { around(rng, term) };
            let payload = match rng.random_range(0..6) {
                0 => vec![],
                1 => vec![rng.random_range(0..8u8), 1, 2],
                _ => vec![1, b'x'],
            };
            Entry { index, term: entry_term, payload: payload.into() }
        })
        .collect()
}

fn outcome(rng: &mut ChaCha8Rng, near: Near) -> AppendOutcome {
    let prev_index = around(rng, near.last_log.index);
    match rng.random_range(0..3) {
        0 => AppendOutcome::Accepted { match_index: around(rng, near.last_log.index) },
        1 => AppendOutcome::Rejected { prev_index, hint: ConflictHint::LogTooShort { last_index: around(rng, 0) } },
        _ => {
            let hint = ConflictHint::TermMismatch { term: around(rng, near.term), first_index: around(rng, 1) };
            AppendOutcome::Rejected { prev_index, hint }
        }
    }
}

fn message(rng: &mut ChaCha8Rng, near: Near) -> Message {
    // Mostly the subject's own term, so that appends are not all stale.
    let term = if rng.random_bool(0.6) { near.term } else { around(rng, near.term) };
    match rng.random_range(0..11) {
        8 => Message::TimeoutNow { term },
        9 => {
            let meta = SnapshotMeta { last: position(rng, near), ..SnapshotMeta::default() };
            let (offset, total_bytes) = (around(rng, 2), around(rng, 4));
            Message::InstallSnapshot { term, meta, offset, total_bytes, data: vec![7; rng.random_range(0..4)] }
        }
        10 => Message::InstallSnapshotResponse { term, last: position(rng, near), received_bytes: around(rng, 2) },
        0 => Message::PreVote { term, last_log: position(rng, near) },
        1 => Message::PreVoteResponse { term, granted: rng.random_bool(0.7) },
        2 => Message::Vote { term, last_log: position(rng, near), transfer: rng.random_bool(0.2) },
        3 => Message::VoteResponse { term, granted: rng.random_bool(0.7) },
        4 => {
            let prev = position(rng, near);
            Message::Append { term, prev, entries: entries(rng, prev, term), commit: around(rng, near.last_log.index) }
        }
        5 => Message::AppendResponse { term, outcome: outcome(rng, near) },
        6 => Message::Heartbeat { term, commit: around(rng, near.last_log.index), round: around(rng, 1) },
        _ => Message::HeartbeatResponse { term, round: around(rng, 1) },
    }
}

/// A node in a random starting role: fresh, restored with a log, or leader.
fn subject(seed: u64) -> Raft {
    match seed % 3 {
        0 => fresh(N1, 3),
        1 => restored(N1, 3, HardState { term: 3, vote: None }, &[1, 1, 2, 3, 3]),
        _ => {
            let mut raft = restored(N1, 3, HardState { term: 2, vote: None }, &[1, 2, 2]);
            elect(&mut raft);
            raft
        }
    }
}

#[test]
fn random_peer_messages_never_panic_and_never_break_core_invariants() {
    let mut roles_seen = std::collections::BTreeSet::new();
    let mut appended = 0;
    for seed in 0..300 {
        let mut rng = rng(1_000 + seed);
        let mut raft = subject(seed);
        let mut now = raft.next_deadline();
        let mut term = raft.term();
        for step in 0..400 {
            let from = if rng.random_bool(0.6) { N2 } else { NodeId(rng.random_range(0..5)) };
            match rng.random_range(0..10) {
                0 => {
                    now = now + Duration::from_millis(rng.random_range(0..60));
                    raft.tick(now);
                }
                1 => {
                    let _ = raft.propose(b"p");
                }
                _ => {
                    let near = Near { term: raft.term(), last_log: raft.last_log() };
                    raft.step(now, from, message(&mut rng, near));
                }
            }
            appended += settle_counting(&mut raft, now);
            roles_seen.insert(raft.role());
            let context = format!("seed {seed} step {step}");
            assert!(raft.term() >= term, "{context}: term went back");
            term = raft.term();
            assert!(raft.commit_index() <= raft.last_log().index, "{context}: commit beyond the log");
            if raft.role() == Role::Leader {
                assert_eq!(raft.leader(), Some(N1), "{context}");
                assert_eq!(raft.durable_hard_state(), raft.hard_state(), "{context}: leader's term not durable");
            }
        }
        assert!(raft.counters().messages_invalid > 0, "seed {seed}: the generator must produce rejects");
    }
    // Without these the test would be exercising only the rejection paths.
    assert_eq!(roles_seen.len(), 4, "every role reached: {roles_seen:?}");
    assert!(appended > 200, "only {appended} entries persisted: the accepting paths were hardly reached");
}

/// `settle`, returning how many entries were persisted on the way.
fn settle_counting(raft: &mut Raft, now: Instant) -> usize {
    let mut entries = 0;
    loop {
        let ready = raft.take_ready();
        let Some(persist) = ready.persist else { return entries };
        entries += persist.entries.len();
        raft.on_persisted(now, persist.id).expect("ids come from the core");
    }
}
