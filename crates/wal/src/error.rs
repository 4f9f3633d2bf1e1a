//! What can go wrong, as typed values.
//!
//! In: failures found by the WAL: a request it refuses, a file that does
//! not read back as a valid log, a disk error it cannot work around.
//! Out: [`WalError`], returned by the request methods (the caller's
//! mistake or back-pressure) or carried by `WalEvent::Failed` (fatal).

use haven_runtime::{FileName, IoError};
use thiserror::Error;

/// The disk operation a disk error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    List,
    Read,
    Write,
    Sync,
    Truncate,
    Rename,
    Remove,
    SyncDir,
}

impl DiskOp {
    pub(crate) fn of(request: &haven_runtime::IoRequest) -> DiskOp {
        use haven_runtime::IoRequest as R;
        match request {
            R::List => DiskOp::List,
            R::Read { .. } => DiskOp::Read,
            R::Write { .. } | R::WriteSync { .. } => DiskOp::Write,
            R::Sync { .. } => DiskOp::Sync,
            R::Truncate { .. } => DiskOp::Truncate,
            R::Rename { .. } => DiskOp::Rename,
            R::Remove { .. } => DiskOp::Remove,
            R::SyncDir => DiskOp::SyncDir,
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WalError {
    /// A record that is not the torn tail of the last segment is invalid, or
    /// the records do not form one log. Never skipped: the node must not run
    /// on a log with a hole in it.
    #[error("corrupt log file {file} at offset {offset}: {reason}")]
    Corrupt { file: FileName, offset: u64, reason: String },
    #[error("recovery needs {bytes} bytes, above {what} = {bytes_max}")]
    RecoverTooLarge { what: &'static str, bytes: u64, bytes_max: u64 },
    #[error("disk error on {op:?} {file:?}: {error}")]
    Disk { op: DiskOp, file: Option<FileName>, error: IoError },
    #[error("the log is not open (yet)")]
    NotOpen,
    #[error("the log was already opened once; a failed log is rebuilt with a new Wal")]
    AlreadyOpened,
    #[error("the log failed earlier and accepts nothing until reopened by a new Wal")]
    Failed,
    #[error("queue full: {bytes_queued} bytes queued, {bytes} more would exceed queue_bytes_max {bytes_max}")]
    QueueFull { bytes_queued: usize, bytes: usize, bytes_max: usize },
    #[error("{what} of {bytes} bytes exceeds {bytes_max}")]
    TooLarge { what: &'static str, bytes: u64, bytes_max: u64 },
    #[error("an append needs at least one entry")]
    NoEntries,
    #[error("entry index {index} does not continue the log (expected {expected})")]
    NotContiguous { index: u64, expected: u64 },
    #[error("entry {index} has term {term}, below the term {term_prev} before it")]
    TermRegress { index: u64, term: u64, term_prev: u64 },
    #[error("cannot truncate from index {index_from}: allowed {index_min}..={index_max}")]
    TruncateOutOfRange { index_from: u64, index_min: u64, index_max: u64 },
    #[error("a snapshot save is already in progress")]
    SnapshotBusy,
    #[error("snapshot at index {index} is not newer than the saved one at {index_saved}")]
    SnapshotStale { index: u64, index_saved: u64 },
    #[error("a compaction is already in progress")]
    CompactBusy,
    #[error("cannot compact through index {index}: the saved snapshot only covers {index_snapshot}")]
    CompactBeyondSnapshot { index: u64, index_snapshot: u64 },
}
