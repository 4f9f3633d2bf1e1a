//! The etcd v3 JSON API, as etcd's grpc-gateway serves it (etcd 3.4 and
//! later), over any [`Backend`], so that existing etcd HTTP clients work
//! against Haven unmodified.
//!
//! In: HTTP requests. Out: etcd's JSON answers, from a [`Backend`]: a
//! station in production, [`MemoryBackend`] in tests and development.
//! [`router`] builds the axum router; [`json`] holds the wire types and
//! their conversions to and from `haven_store`.

pub mod backend;
mod body;
pub mod error;
pub mod json;
mod limits;
pub mod memory;
mod memory_watch;
mod router;
mod stream;
mod watch_forwarder;
mod watch_session;

pub use backend::{Backend, BackendError, Identity, Member, Status, WatchCreate, WatchUpdate};
pub use error::{ErrorBody, GatewayError, GrpcCode};
pub use limits::{GatewayLimits, REQUEST_BYTES_MAX_DEFAULT};
pub use memory::MemoryBackend;
pub use router::{ETCD_VERSION, router};
