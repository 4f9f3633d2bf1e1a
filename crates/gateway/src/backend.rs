//! What the gateway needs from the system behind it.
//!
//! In: store requests already decoded from etcd's JSON, lease keep-alives,
//! watch creations, membership and status queries. Out: store responses,
//! watch streams and cluster facts, or a [`BackendError`] the gateway
//! turns into etcd's error body and HTTP status.
//!
//! A production station implements it over its replica (forwarding to the
//! leader where needed); `MemoryBackend` implements it over one in-memory
//! store, for tests of the gateway alone.

use haven_store::{Event, LeaseId, Request, Response, StoreError};
use std::future::Future;
use thiserror::Error;
use tokio::sync::mpsc;

/// The member answering, for etcd's response header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub cluster_id: u64,
    pub member_id: u64,
    /// The Raft term this member knows now.
    pub raft_term: u64,
}

/// One member of the cluster, as etcd's `Member` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// Empty for a member added but not yet started.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// etcd's `StatusResponse`, less the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The server version string (etcd reports e.g. "3.4.23").
    pub version: String,
    pub db_size_bytes: u64,
    /// The leader's member id; 0 when none is known.
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub is_learner: bool,
    pub errors: Vec<String>,
}

/// etcd's WatchCreateRequest, as the gateway passes it on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCreate {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// First revision to report; 0 means "from the next write on".
    pub start_revision: u64,
    pub prev_kv: bool,
}

/// The next events of a watch, in revision order, continuing exactly where
/// the previous update stopped; or why the watch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchUpdate {
    Events(Vec<Event>),
    /// The history the watch needs was compacted; nothing follows.
    Compacted {
        compact_revision: u64,
    },
    /// The backend closed the watch (e.g. its member stopped); nothing follows.
    Closed {
        reason: String,
    },
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BackendError {
    /// The store refused the request (etcd's own error).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No leader, or it did not answer in time: retry, maybe elsewhere.
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: no leader")]
    NoLeader,
    /// Too much work in flight here: retry later.
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    /// A member table change refused for a reason etcd has no code for
    /// (the last voter, too many members, an address too long).
    #[error("etcdserver: {0}")]
    MemberRefused(String),
    #[error("etcdserver: invalid peer URL {0}")]
    InvalidPeerUrl(String),
    /// Another membership change is still in progress.
    #[error("etcdserver: unhealthy cluster")]
    UnhealthyCluster,
    #[error("etcdserver: server stopped")]
    Stopped,
    /// This member was removed from the cluster: it serves nothing, and a
    /// client should ask another member (the request was not carried out).
    #[error("etcdserver: the member has been permanently removed from the cluster; ask another member")]
    Removed,
}

/// The system behind the gateway. Every method may be called concurrently.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Who answers, for the response header.
    fn identity(&self) -> Identity;

    /// The store revision this member has applied: etcd puts it in the
    /// header of answers that do not come from the store itself (status,
    /// keep-alive, watch creation and events, progress notifications).
    fn revision(&self) -> u64;

    /// A store request. Writes always go through consensus; a `Range` (or
    /// a read-only `Txn`) with `serializable` may be served from this
    /// member's applied state, otherwise it is linearizable.
    fn request(
        &self,
        request: Request,
        serializable: bool,
    ) -> impl Future<Output = Result<Response, BackendError>> + Send;

    /// Renews `lease` for its full TTL; returns the TTL in seconds.
    fn keep_alive(&self, lease: LeaseId) -> impl Future<Output = Result<i64, BackendError>> + Send;

    /// Opens a watch. Dropping the receiver cancels it. The channel is
    /// bounded: a watcher that does not keep up is closed, never skipped.
    fn watch(
        &self,
        create: WatchCreate,
    ) -> impl Future<Output = Result<mpsc::Receiver<WatchUpdate>, BackendError>> + Send;

    fn member_list(&self) -> impl Future<Output = Result<Vec<Member>, BackendError>> + Send;

    /// Adds a member (a learner if `is_learner`); returns it and the new list.
    fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> impl Future<Output = Result<(Member, Vec<Member>), BackendError>> + Send;

    /// Removes member `id`; returns the new list.
    fn member_remove(&self, id: u64) -> impl Future<Output = Result<Vec<Member>, BackendError>> + Send;

    /// Promotes learner `id` to voter once it caught up; returns the new list.
    fn member_promote(&self, id: u64) -> impl Future<Output = Result<Vec<Member>, BackendError>> + Send;

    fn status(&self) -> impl Future<Output = Result<Status, BackendError>> + Send;
}
