//! The etcd v3 JSON API, as etcd's grpc-gateway serves it (etcd 3.4 and
//! later), over any [`Backend`], so that existing etcd HTTP clients work
//! against Haven unmodified.

pub mod backend;

pub use backend::{Backend, BackendError, Identity, Member, Status, WatchCreate, WatchUpdate};
