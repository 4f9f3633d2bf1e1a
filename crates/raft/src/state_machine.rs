//! The replicated state machine, as consensus sees it: a pluggable trait.
//!
//! In: committed entries, in log order, each exactly once; snapshots to
//! take at the applied index and to install from a leader.
//! Out: one output per applied entry (for whoever proposed it), snapshot
//! bytes, and the applied index.
//!
//! Commands are opaque to consensus: the core never looks inside an entry's
//! command bytes, so any deterministic machine plugs in — the station's
//! etcd-model store, or a test harness's digest. The core stays RawNode
//! style (the caller may apply `Ready::committed` itself); the drivers
//! below are the one place that pairs the machine with the core's
//! bookkeeping, so callers cannot get the order wrong.

use crate::entry::Entry;
use crate::error::{CompactError, UsageError};
use crate::raft::Raft;
use crate::state::SnapshotMeta;
use thiserror::Error;

/// A deterministic machine fed by the log. Two machines that applied the
/// same entries must be equal, and `restore(snapshot())` must give an equal
/// machine: every replica then holds the same state at each index.
pub trait StateMachine {
    /// What applying one entry yields (a client's answer, say).
    type Output;
    /// Why a snapshot could not be taken or restored.
    type Error: std::error::Error;

    /// Applies the next committed entry: its index is `applied_index() + 1`.
    /// No-ops and configuration entries come too, so the machine's applied
    /// index follows the log; a machine ignores what it does not use.
    fn apply(&mut self, entry: &Entry) -> Self::Output;

    /// The index of the last entry applied; 0 before any.
    fn applied_index(&self) -> u64;

    /// The whole state at `applied_index()`, described by `meta`, as bytes
    /// to keep on disk and to send to lagging followers.
    fn snapshot(&self, meta: &SnapshotMeta) -> Result<Vec<u8>, Self::Error>;

    /// Replaces the whole state with a snapshot taken at `meta.last.index`.
    fn restore(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), Self::Error>;
}

/// Why [`Raft::snapshot_machine`] took no snapshot.
#[derive(Debug, Error)]
pub enum MachineSnapshotError<E: std::error::Error> {
    #[error(transparent)]
    Compact(#[from] CompactError),
    #[error("the state machine could not take its snapshot: {0}")]
    Machine(E),
}

impl Raft {
    /// Applies committed entries (from `Ready::committed`) to `machine`, in
    /// order, then tells the core they are applied. Returns each output
    /// with its entry's index.
    pub fn apply_to<M: StateMachine>(
        &mut self,
        machine: &mut M,
        committed: &[Entry],
    ) -> Result<Vec<(u64, M::Output)>, UsageError> {
        let mut outputs = Vec::with_capacity(committed.len());
        for entry in committed {
            assert_eq!(entry.index, machine.applied_index() + 1, "committed entries are applied once each, in order");
            outputs.push((entry.index, machine.apply(entry)));
        }
        if let Some(last) = committed.last() {
            self.applied(last.index)?;
        }
        Ok(outputs)
    }

    /// Takes the machine's snapshot at its applied index, then compacts the
    /// log there; returns the snapshot to store (and to pass to
    /// `provide_snapshot` later). A snapshot the machine cannot take leaves
    /// the log whole.
    pub fn snapshot_machine<M: StateMachine>(
        &mut self,
        machine: &M,
    ) -> Result<(SnapshotMeta, Vec<u8>), MachineSnapshotError<M::Error>> {
        let index = machine.applied_index();
        let meta = self.compaction_meta(index)?;
        let data = machine.snapshot(&meta).map_err(MachineSnapshotError::Machine)?;
        self.compact_log(index);
        Ok((meta, data))
    }
}
