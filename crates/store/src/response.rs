//! The answers the store gives, mirroring etcd v3's response messages.
//!
//! In: built by [`crate::Store::apply`]. Out: carried back to the client by
//! the glue (postcard) and the server, which adds the cluster id, member id
//! and raft term to the header.

use crate::key_value::KeyValue;
use crate::lease_id::LeaseId;
use crate::lessor::whole_seconds;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHeader {
    /// The store revision the response reflects (after the write, if any).
    pub revision: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact(CompactionResponse),
    LeaseGrant(LeaseGrantResponse),
    LeaseRevoke(LeaseRevokeResponse),
    LeaseTimeToLive(LeaseTimeToLiveResponse),
    LeaseLeases(LeaseLeasesResponse),
    LeaseGrantMs(LeaseGrantMsResponse),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    pub header: ResponseHeader,
    pub kvs: Vec<KeyValue>,
    /// More key-values matched than were returned.
    pub more: bool,
    /// How many keys the range holds at the read revision, before `limit`.
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub header: ResponseHeader,
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    pub header: ResponseHeader,
    pub deleted: u64,
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub header: ResponseHeader,
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionResponse {
    pub header: ResponseHeader,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    pub header: ResponseHeader,
    pub id: LeaseId,
    /// The granted TTL in seconds, after raising it to the minimum.
    pub ttl: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantMsResponse {
    pub header: ResponseHeader,
    pub id: LeaseId,
    /// The granted TTL in milliseconds, after raising it to the minimum.
    pub ttl_ms: u64,
}

impl LeaseGrantMsResponse {
    /// The grant as etcd's API reports one: its TTL in whole seconds.
    pub fn in_seconds(&self) -> LeaseGrantResponse {
        LeaseGrantResponse { header: self.header, id: self.id, ttl: whole_seconds(Duration::from_millis(self.ttl_ms)) }
    }
}

impl Response {
    /// The lease a grant created and its TTL, in whichever unit it was
    /// granted: what the leader's lessor starts to time.
    pub fn granted_lease(&self) -> Option<(LeaseId, Duration)> {
        match self {
            Response::LeaseGrant(g) => Some((g.id, Duration::from_secs(u64::try_from(g.ttl).unwrap_or(0)))),
            Response::LeaseGrantMs(g) => Some((g.id, Duration::from_millis(g.ttl_ms))),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRevokeResponse {
    pub header: ResponseHeader,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLiveResponse {
    pub header: ResponseHeader,
    pub id: LeaseId,
    /// -1 when the lease does not exist (etcd answers so, without an error).
    /// Otherwise the granted TTL: only the leader's [`crate::Lessor`] knows
    /// the remaining time, and the server puts it here.
    pub ttl: i64,
    pub granted_ttl: i64,
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseLeasesResponse {
    pub header: ResponseHeader,
    pub leases: Vec<LeaseId>,
}
