//! The batch of work the core hands its caller after each input.
//!
//! In: nothing (plain data built by `Raft::take_ready`).
//! Out: [`Ready`]: a persist request to carry out, messages to send now,
//! committed entries to apply, a role/leader change to report, and reads
//! confirmed or failed, and snapshot traffic: a request for the bytes of
//! the latest snapshot (leader) or a received snapshot to install
//! (follower, then `on_snapshot_installed`).
//!
//! The caller's loop is: feed an input (`step`, `tick`, `propose`,
//! `on_persisted`, `applied`), call `take_ready`, then in any order
//! (a) write `persist` to the WAL and, once it is fsynced, call
//! `on_persisted(persist.id)`; (b) send `messages`; (c) apply `committed`
//! and call `applied`. Messages that depend on a persist are not in any
//! `Ready` until that persist is reported, so no order of (a), (b) and (c)
//! can break durability.

use crate::entry::Entry;
use crate::message::Envelope;
use crate::reads::ReadState;
use crate::state::{HardState, SnapshotMeta};
use haven_runtime::NodeId;

/// Identifies a persist request; reported back through `on_persisted`.
/// Requests must become durable in issue order (reporting one reports all
/// earlier ones), which a WAL that appends and fsyncs in order gives.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct PersistId(pub u64);

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PersistRequest {
    pub id: PersistId,
    /// Write this hard state (term, vote) if present.
    pub hard_state: Option<HardState>,
    /// Contiguous entries; the WAL first drops any entry it holds with an
    /// index at or above `entries[0].index` (a conflicting suffix).
    pub entries: Vec<Entry>,
}

/// A complete snapshot received from the leader, handed out once every
/// persist request issued before it is durable. The caller, in order:
/// applies every entry handed out before it; replaces the state machine
/// with `data`; makes the snapshot durable with `meta` and tells the WAL
/// that the log now starts after `meta.last` — dropping every entry, not
/// only those up to `meta.last.index`, unless `log_kept_after`; then calls
/// `Raft::on_snapshot_installed(&meta)`. No committed entries are handed
/// out in between.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReceivedSnapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
    /// Our log holds `meta.last`, so the entries after it stay.
    pub log_kept_after: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// Volatile state the caller may want to observe (and report as outputs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SoftState {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Ready {
    pub persist: Option<PersistRequest>,
    /// Safe to send immediately, in this order.
    pub messages: Vec<Envelope>,
    /// Committed entries, in log order, continuing the previous batch.
    pub committed: Vec<Entry>,
    /// Present when role, term or leader changed since the last `Ready`.
    pub soft_state: Option<SoftState>,
    /// Reads confirmed by ReadIndex: serve each once `applied >= index`.
    pub read_states: Vec<ReadState>,
    /// Contexts of reads that will never be confirmed (leadership ended).
    pub reads_failed: Vec<u64>,
    /// A follower needs compacted entries: hand the latest snapshot to
    /// `Raft::provide_snapshot` (asked again each check-quorum period
    /// while it is missing).
    pub snapshot_needed: bool,
    /// A snapshot to install; see [`ReceivedSnapshot`].
    pub snapshot: Option<ReceivedSnapshot>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_none()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.soft_state.is_none()
            && self.read_states.is_empty()
            && self.reads_failed.is_empty()
            && !self.snapshot_needed
            && self.snapshot.is_none()
    }
}
