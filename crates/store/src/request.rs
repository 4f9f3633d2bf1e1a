//! The commands the store applies, mirroring etcd v3's request messages.
//!
//! In: what a client asked for, decoded by the server and carried through
//! the raft log as postcard bytes. Out: nothing by itself; [`crate::Store::apply`]
//! turns a [`Request`] into a [`crate::Response`] or a [`crate::StoreError`].
//!
//! Field names and conventions are etcd's (see [`crate::KeyRange`] for
//! `key`/`range_end`); revisions are unsigned and 0 means "current", lease
//! ids are etcd's int64 with 0 meaning "no lease". Options that never reach
//! the state machine (`serializable`, keep-alive, watch) are not here.

use crate::lease_id::LeaseId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(CompactionRequest),
    LeaseGrant(LeaseGrantRequest),
    /// Also what the leader proposes when a lease expires.
    LeaseRevoke(LeaseRevokeRequest),
    LeaseTimeToLive(LeaseTimeToLiveRequest),
    LeaseLeases,
    /// Haven's own: a lease whose TTL counts milliseconds (a node lease
    /// under a second). Last, so the encoding of the others never changes.
    LeaseGrantMs(LeaseGrantMsRequest),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    #[serde(with = "haven_runtime::byte_vec")]
    pub range_end: Vec<u8>,
    /// At most this many key-values; 0 means no limit.
    pub limit: u64,
    /// Read at this revision; 0 means the current one.
    pub revision: u64,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    pub keys_only: bool,
    pub count_only: bool,
    /// Filters on the returned key-values (0 means no filter); as in etcd
    /// they do not change `count`.
    pub min_mod_revision: u64,
    pub max_mod_revision: u64,
    pub min_create_revision: u64,
    pub max_create_revision: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    #[serde(with = "haven_runtime::byte_vec")]
    pub value: Vec<u8>,
    /// Attach the key to this lease; 0 detaches it from any lease.
    pub lease: LeaseId,
    pub prev_kv: bool,
    /// Keep the current value (the key must exist and `value` be empty).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist and `lease` be 0).
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    #[serde(with = "haven_runtime::byte_vec")]
    pub range_end: Vec<u8>,
    pub prev_kv: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// What a compare looks at, with the operand (etcd's `target` and
/// `target_union` in one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(u64),
    Create(u64),
    Mod(u64),
    Value(Vec<u8>),
    Lease(LeaseId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    /// Compare every key in the range (etcd >= 3.3); empty for one key.
    #[serde(with = "haven_runtime::byte_vec")]
    pub range_end: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionRequest {
    pub revision: u64,
    /// etcd's "wait until the compaction is physically applied"; compaction
    /// here is synchronous, so it changes nothing.
    pub physical: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantRequest {
    /// Seconds; raised to the configured minimum as etcd does.
    pub ttl: i64,
    /// 0 lets the store choose.
    pub id: LeaseId,
}

/// A grant in milliseconds. etcd's API counts whole seconds; through it
/// such a lease reports its TTL rounded up to the next second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantMsRequest {
    /// Raised to the configured minimum (`StoreConfig::lease_ttl_ms_min`).
    pub ttl_ms: u64,
    /// 0 lets the store choose.
    pub id: LeaseId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeRequest {
    pub id: LeaseId,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLiveRequest {
    pub id: LeaseId,
    /// Also list the keys attached to the lease.
    pub keys: bool,
}
