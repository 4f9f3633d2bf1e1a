//! The units the WAL stores for raft.
//!
//! In/out: an [`Entry`] (index, term, opaque payload) and a snapshot's
//! [`SnapshotMeta`] (the last index and term it covers). Index 0 and term 0
//! mean "nothing", so a real entry has index ≥ 1.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    /// Opaque to the WAL: raft encodes its own entry kinds in it. Shared
    /// with raft's copy of the entry, not copied.
    #[serde(
        serialize_with = "haven_runtime::byte_vec::serialize",
        deserialize_with = "haven_runtime::byte_vec::deserialize_shared"
    )]
    pub payload: Arc<[u8]>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}+{}B", self.index, self.term, self.payload.len())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
}

/// A snapshot as recovery returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({:?}, {} bytes)", self.meta, self.data.len())
    }
}
