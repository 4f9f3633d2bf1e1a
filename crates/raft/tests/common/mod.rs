//! Helpers shared by the transcript tests: fixed node ids, a small config,
//! nodes built fresh or from a given durable log, and a "settle" that plays
//! a perfect disk (every persist completes at once).
#![allow(dead_code)]

pub mod cluster;
pub mod disk;
pub mod machine;

use haven_raft::{
    AppendOutcome, Config, DurableState, Entry, Envelope, HardState, LogPosition, Message, Raft, Ready, Role, Setup,
    SnapshotMeta,
};
use haven_runtime::{Instant, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

pub const N1: NodeId = NodeId(1);
pub const N2: NodeId = NodeId(2);
pub const N3: NodeId = NodeId(3);
pub const N4: NodeId = NodeId(4);
pub const N5: NodeId = NodeId(5);

pub fn ms(n: u64) -> Instant {
    Instant::from_nanos(n * 1_000_000)
}

/// Election timeouts in [100, 200) ms, heartbeats every 20 ms, at most 3
/// entries per append and 2 appends in flight: small enough that tests hit
/// every limit.
pub fn config() -> Config {
    Config {
        election_timeout_min: Duration::from_millis(100),
        election_timeout_max: Duration::from_millis(200),
        heartbeat_interval: Duration::from_millis(20),
        entries_per_append_max: 3,
        append_bytes_max: 1024 * 1024,
        inflight_appends_max: 2,
        uncommitted_entries_max: 64,
        command_bytes_max: 1024,
        apply_batch_entries_max: 64,
        messages_queued_max: 1024,
        reads_pending_max: 4,
        snapshot_chunk_bytes_max: 4,
        snapshot_bytes_max: 64,
        promote_lag_entries_max: 2,
        lease_reads: false,
        clock_drift_ppm_max: 10_000,
        stall_gap_min: None,
        commit_notices: false,
    }
}

pub fn voters(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

pub fn setup(id: NodeId, n: u64) -> Setup {
    Setup { id, voters: voters(n), config: config() }
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn fresh(id: NodeId, n: u64) -> Raft {
    Raft::new(setup(id, n), rng(id.0), ms(0)).expect("valid setup")
}

/// Entries 1..=terms.len() with the given terms; commands are "e<index>".
pub fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms.iter().enumerate().map(|(i, &t)| command(i as u64 + 1, t)).collect()
}

pub fn command(index: u64, term: u64) -> Entry {
    Entry::command(index, term, format!("e{index}").as_bytes())
}

/// A node restarted with `hard_state` and a log of the given terms.
pub fn restored(id: NodeId, n: u64, hard_state: HardState, terms: &[u64]) -> Raft {
    let durable = DurableState { hard_state, snapshot: SnapshotMeta::default(), entries: log_of(terms) };
    Raft::restore(setup(id, n), durable, rng(id.0), ms(0)).expect("valid durable state")
}

pub fn to(to: NodeId, msg: Message) -> Envelope {
    Envelope { to, msg }
}

pub fn pos(index: u64, term: u64) -> LogPosition {
    LogPosition::new(index, term)
}

/// Takes `Ready`s, reporting each persist durable at once, until nothing is
/// left; returns every message released, in order.
pub fn settle(raft: &mut Raft, now: Instant) -> Vec<Envelope> {
    let mut messages = Vec::new();
    loop {
        let ready = raft.take_ready();
        let done = ready.persist.is_none() && ready.messages.is_empty();
        messages.extend(ready.messages);
        if let Some(persist) = ready.persist {
            raft.on_persisted(now, persist.id).expect("ids come from the core");
        }
        if done {
            return messages;
        }
    }
}

/// Takes one `Ready` without persisting anything.
pub fn ready(raft: &mut Raft) -> Ready {
    raft.take_ready()
}

/// Drives `raft` (a follower) to leadership with every peer granting, with
/// a perfect disk; returns the messages it sends as a new leader and the
/// time it was elected.
pub fn elect(raft: &mut Raft) -> (Vec<Envelope>, Instant) {
    // With `stall_gap_min` the node is called before its election deadline too.
    let mut now = raft.next_deadline();
    raft.tick(now);
    while raft.role() == Role::Follower {
        now = raft.next_deadline();
        raft.tick(now);
    }
    settle(raft, now);
    let proposed = raft.term() + 1;
    let peers: Vec<NodeId> = raft.voters().iter().copied().filter(|&v| v != raft.id()).collect();
    for &peer in &peers {
        raft.step(now, peer, Message::PreVoteResponse { term: proposed, granted: true });
    }
    settle(raft, now);
    for &peer in &peers {
        raft.step(now, peer, Message::VoteResponse { term: proposed, granted: true });
    }
    assert_eq!(raft.role(), Role::Leader, "all peers granted");
    (settle(raft, now), now)
}

pub fn accepted(term: u64, match_index: u64) -> Message {
    Message::AppendResponse { term, outcome: AppendOutcome::Accepted { match_index } }
}

/// n1 leads term 1 of three; both followers acknowledged the no-op, which
/// is committed and handed out.
pub fn caught_up_leader_with(config: Config) -> (Raft, Instant) {
    let mut n1 = Raft::new(Setup { id: N1, voters: voters(3), config }, rng(1), ms(0)).expect("valid setup");
    let (_, t) = elect(&mut n1);
    n1.step(t, N2, accepted(1, 1));
    n1.step(t, N3, accepted(1, 1));
    let r = n1.take_ready();
    assert_eq!((r.messages, r.committed, n1.commit_index()), (vec![], vec![Entry::noop(1, 1)], 1));
    (n1, t)
}

pub fn caught_up_leader() -> (Raft, Instant) {
    caught_up_leader_with(config())
}
