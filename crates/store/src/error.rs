//! Why the store refused a request.
//!
//! In: a request that etcd would refuse. Out: a typed error, serde so the
//! glue can replicate it back to the client, whose `Display` is etcd's
//! message so the server can pass it on verbatim. A refused request never
//! changes the store.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("mvcc: required revision has been compacted")]
    Compacted { compact_revision: u64 },
    #[error("mvcc: required revision is a future revision")]
    FutureRevision { current_revision: u64 },
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
}

/// A watch or history read from before the compaction point.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
#[error("mvcc: required revision has been compacted (compacted at {compact_revision})")]
pub struct Compacted {
    pub compact_revision: u64,
}

impl From<Compacted> for StoreError {
    fn from(c: Compacted) -> StoreError {
        StoreError::Compacted { compact_revision: c.compact_revision }
    }
}
