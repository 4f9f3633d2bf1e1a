//! etcd v3's JSON, exactly as etcd 3.4's grpc-gateway writes and reads it.
//!
//! In: request bodies from etcd HTTP clients, or store and backend answers.
//! Out: `haven_store` requests, or response bodies byte-compatible with
//! etcd's: 64-bit integers as decimal strings (numbers accepted on input),
//! bytes as base64, enums by name (numbers accepted), snake_case field
//! names as etcd emits them (camelCase accepted, as jsonpb does), default
//! values omitted, unknown fields ignored.

pub mod fields;

mod cluster;
mod kv;
mod lease;
mod txn;
mod watch;

pub(crate) use cluster::members;
pub use cluster::{Member, MemberAddRequest, MemberAddResponse, MemberIdRequest, MembersResponse, StatusResponse};
pub use kv::{
    CompactionRequest, DeleteRangeRequest, DeleteRangeResponse, HeaderOnly, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, SortOrder, SortTarget,
};
pub(crate) use kv::{store_u64, wire_i64};
pub use lease::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseIdRequest, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseStatus,
    LeaseTimeToLiveResponse,
};
pub use txn::{Compare, CompareResult, CompareTarget, RequestOp, ResponseOp, TxnRequest, TxnResponse};
pub use watch::{
    Event, EventType, FilterType, WatchCancelRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
    WatchResponse,
};

use haven_store as store;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A body that is not valid etcd JSON; etcd answers InvalidArgument.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{message}")]
pub struct JsonError {
    pub message: String,
}

impl JsonError {
    pub fn new(message: impl Into<String>) -> JsonError {
        JsonError { message: message.into() }
    }
}

/// Parses one request body; an empty body is `{}`, as for etcd.
pub fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, JsonError> {
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else { return Ok(T::default()) };
    // serde would also read a struct from an array; etcd wants an object.
    if first != b'{' {
        return Err(JsonError::new("invalid JSON body: want an object such as {\"key\":\"Zm9v\"}"));
    }
    serde_json::from_slice(body).map_err(|e| JsonError::new(format!("invalid JSON body: {e}")))
}

/// One message of a streamed answer (watch, keep-alive), one per line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamResult<T> {
    pub result: T,
}

/// The store response as the JSON body etcd writes for it, fields in
/// etcd's order.
pub fn response_body(resp: &store::Response, header: ResponseHeader) -> Vec<u8> {
    let bytes = match resp {
        store::Response::Range(r) => serde_json::to_vec(&RangeResponse::from_store(r, header)),
        store::Response::Put(r) => serde_json::to_vec(&PutResponse::from_store(r, header)),
        store::Response::DeleteRange(r) => serde_json::to_vec(&DeleteRangeResponse::from_store(r, header)),
        store::Response::Txn(r) => serde_json::to_vec(&TxnResponse::from_store(r, header)),
        store::Response::Compact(_) | store::Response::LeaseRevoke(_) => serde_json::to_vec(&HeaderOnly { header }),
        store::Response::LeaseGrant(r) => serde_json::to_vec(&LeaseGrantResponse::from_store(r, header)),
        store::Response::LeaseTimeToLive(r) => serde_json::to_vec(&LeaseTimeToLiveResponse::from_store(r, header)),
        store::Response::LeaseLeases(r) => serde_json::to_vec(&LeaseLeasesResponse::from_store(r, header)),
        // Granted through Haven's own API; in etcd's terms, whole seconds rounded up.
        store::Response::LeaseGrantMs(r) => {
            serde_json::to_vec(&LeaseGrantResponse::from_store(&r.in_seconds(), header))
        }
    };
    bytes.expect("these types always serialize")
}

/// The revision a store response reports in its header.
pub fn response_revision(resp: &store::Response) -> u64 {
    match resp {
        store::Response::Range(r) => r.header.revision,
        store::Response::Put(r) => r.header.revision,
        store::Response::DeleteRange(r) => r.header.revision,
        store::Response::Txn(r) => r.header.revision,
        store::Response::Compact(r) => r.header.revision,
        store::Response::LeaseGrant(r) => r.header.revision,
        store::Response::LeaseRevoke(r) => r.header.revision,
        store::Response::LeaseTimeToLive(r) => r.header.revision,
        store::Response::LeaseLeases(r) => r.header.revision,
        store::Response::LeaseGrantMs(r) => r.header.revision,
    }
}

#[cfg(test)]
mod tests;
