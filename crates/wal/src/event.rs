//! What the WAL tells its parent.
//!
//! In: nothing (built by the WAL). Out: [`WalEvent`]s through the sub-context
//! the parent hands in, most importantly [`WalEvent::Durable`]: only then may
//! raft act on what it wrote (acknowledge entries, answer a vote).

use crate::entry::{Entry, Snapshot, SnapshotMeta};
use crate::error::{DiskOp, WalError};
use haven_runtime::{FileName, IoError};

/// Numbers the requests the WAL accepted, in order; `Durable { through }`
/// covers every request up to and including `through`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// The tail of the last segment that recovery cut off: the end of a write
/// that a crash interrupted. Nothing in it was ever acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: FileName,
    pub offset: u64,
    pub bytes_dropped: u64,
    pub reason: String,
}

/// The durable state found on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The last hard state written, if any.
    pub hard_state: Option<Vec<u8>>,
    pub snapshot: Option<Snapshot>,
    /// Every entry after the snapshot, contiguous, in index order.
    pub entries: Vec<Entry>,
    /// The last index of the log: of the last entry, else of the snapshot, else 0.
    pub index_last: u64,
    pub torn_tail: Option<TornTail>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalEvent {
    /// Recovery finished; the WAL accepts requests from now on.
    Opened(Box<Recovered>),
    /// Every request up to `through` is durable. `index_last` is the log's
    /// last index once they are applied; `hard_state` says whether one of
    /// them set the hard state.
    Durable { through: Ticket, index_last: u64, hard_state: bool },
    /// The snapshot is durable; segments it covers may now be compacted.
    SnapshotSaved { meta: SnapshotMeta },
    /// The save was abandoned; the previous snapshot is intact.
    SnapshotFailed { meta: SnapshotMeta, op: DiskOp, error: IoError },
    /// Segments were removed durably; the log keeps entries from `index_first` on.
    Compacted { segments_removed: usize, index_first: u64 },
    /// A compaction stopped on a disk error; the files it left are harmless.
    CompactFailed { op: DiskOp, error: IoError },
    /// A write failed and will be retried; nothing was acknowledged.
    DiskError { op: DiskOp, error: IoError, attempt: u32 },
    /// The WAL stopped for good; the node must be rebuilt (as after a crash).
    Failed { error: WalError },
}
