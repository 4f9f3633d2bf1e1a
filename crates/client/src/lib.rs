//! A client of the etcd v3 JSON API (see `crates/gateway`), used by the
//! `haven` CLI and benchmarks against Haven and etcd alike, and of Haven's
//! own operator API under `/v1/` ([`ha`]: services, nodes, events).
//!
//! In: endpoints and typed requests (or command lines, through [`cli`] and
//! [`bench`]). Out: typed responses, printed tables or JSON, benchmark
//! figures; every failure a [`ClientError`] that says what to do.

mod backoff;
mod client;
mod endpoint;
mod error;
mod json;
mod kv;
mod lease;
mod line_stream;
mod lines;
mod maintenance;
mod member;
mod txn;
mod watch;

pub mod bench;
pub mod cli;
pub mod ha;

pub use backoff::Backoff;
pub use client::{Client, ClientConfig, Retry};
pub use endpoint::{is_loopback, parse_endpoint, parse_endpoints};
pub use error::{AttemptFailure, ClientError};
pub use kv::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, prefix_end,
};
pub use lease::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
pub use lines::{LineBuffer, LineTooLong};
pub use maintenance::StatusResponse;
pub use member::{Member, MemberAddRequest, MemberAddResponse, MemberListResponse};
pub use txn::{Compare, CompareResult, CompareTarget, RequestOp, ResponseOp, TxnRequest, TxnResponse};
pub use watch::{Event, EventType, WatchCreateRequest, WatchResponse, Watcher};
