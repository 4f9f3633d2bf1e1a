//! The WAL's component types that its parent wraps in its own enums.
//!
//! In/out: [`WalIo`] tags every disk operation with the WAL lane it belongs
//! to (each lane has at most one operation in flight, so the lane is all a
//! completion needs); [`WalTimer`] is the write-retry backoff; [`NoMsg`] says
//! the WAL never talks to other nodes.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalIo {
    /// Listing, reading and repairing files while opening.
    Open,
    /// Group-commit writes and syncs of the segments.
    Log,
    /// Writing, syncing and installing a snapshot.
    Snapshot,
    /// Removing covered segments.
    Compact,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalTimer {
    /// Retry the batch write that failed.
    RetryWrite,
}

/// The WAL sends no messages; a type with no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoMsg {}
