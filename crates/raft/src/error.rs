//! Errors returned to the core's caller.
//!
//! In: nothing. Out: [`ProposeError`] (why a command was not accepted),
//! [`ReadError`] and [`LeaseError`] (why a read was not), [`TransferError`] (why a leadership
//! transfer was not started), [`CompactError`] and [`SnapshotError`] (why
//! a compaction or snapshot was refused), [`RestoreError`] (why recovered
//! state cannot be used) and [`UsageError`] (the caller broke the `Ready`
//! protocol).

use crate::config::ConfigError;
use crate::entry::PayloadError;
use crate::gate::PersistError;
use crate::membership::MembershipError;
use haven_runtime::NodeId;
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("command of {bytes} bytes exceeds command_bytes_max of {bytes_max}")]
    TooLarge { bytes: usize, bytes_max: usize },
    #[error("{uncommitted} entries await commit, the limit is {uncommitted_max}; retry later")]
    Backpressure { uncommitted: u64, uncommitted_max: u64 },
    #[error("leadership is being transferred to {to}; retry there or after the transfer")]
    Transferring { to: NodeId },
}

/// Why a ReadIndex request was not accepted. A follower does not forward
/// reads: the caller redirects the client to `leader_hint`, as for writes.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ReadError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("{pending} reads are pending, the limit is {pending_max}; retry later")]
    Backpressure { pending: usize, pending_max: usize },
}

/// Why a read cannot be served from the leader lease now.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LeaseError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("no leader lease holds now; use read_index")]
    NoLease,
}

/// Why a leadership transfer was not started.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TransferError {
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader { leader_hint: Option<NodeId> },
    #[error("{node} is not a voter other than the leader")]
    NotAVoter { node: NodeId },
    #[error("a transfer to {to} is already in progress")]
    InProgress { to: NodeId },
}

/// Why `compact` refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CompactError {
    #[error("index {index} is not applied yet (applied {applied})")]
    NotApplied { index: u64, applied: u64 },
    #[error("index {index} is below the current snapshot at {snapshot_index}")]
    AlreadyCompacted { index: u64, snapshot_index: u64 },
    /// Retry once the pending log writes are durable.
    #[error("index {index} is not yet durable in this node's log (durable up to {stable_index})")]
    NotDurable { index: u64, stable_index: u64 },
}

/// Why `provide_snapshot` refused the bytes it was given.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot at {index} is older than the log's start at {first_index}")]
    Stale { index: u64, first_index: u64 },
    #[error("snapshot at {index} is beyond the commit index {commit}")]
    NotCommitted { index: u64, commit: u64 },
    #[error("snapshot at {index} has term {term}, the log has {log_term}")]
    TermMismatch { index: u64, term: u64, log_term: u64 },
    #[error("snapshot of {bytes} bytes exceeds snapshot_bytes_max of {bytes_max}")]
    TooLarge { bytes: u64, bytes_max: u64 },
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RestoreError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("bootstrap voters {voters:?} must be non-empty, without duplicates, at most MEMBERS_MAX")]
    Voters { voters: Vec<NodeId> },
    #[error("log entry at position {position} has index {found}, expected {expected}")]
    Gap { position: usize, expected: u64, found: u64 },
    #[error("log entry {index} has term {term}, below the previous term {previous}")]
    TermRegression { index: u64, term: u64, previous: u64 },
    #[error("term {term} exceeds the largest valid term {term_max}")]
    TermTooLarge { term: u64, term_max: u64 },
    #[error("log entry {index} has a bad payload: {error}")]
    Payload { index: u64, error: PayloadError },
    #[error("the snapshot's configuration is invalid: {0}")]
    Membership(#[from] MembershipError),
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum UsageError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("applied index {index} is not between the last applied {applied} and the last handed out {handed_out}")]
    Applied { index: u64, applied: u64, handed_out: u64 },
    #[error("no received snapshot at {index} awaits installation")]
    NoSnapshotToInstall { index: u64 },
    #[error("snapshot installed while entries up to {handed_out} were handed out but only {applied} applied")]
    InstalledBeforeApplied { applied: u64, handed_out: u64 },
}
