//! Why a node could not start.
//!
//! In: failures while setting a node up (limits, data directory, listening
//! socket, entropy, disk thread). Out: a [`NetError`] for the caller.
//! Once a node runs, nothing external stops it: bad peers, broken links and
//! disk errors are logged, counted and handed to the component instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("invalid limits: {reason}")]
    Limits { reason: String },
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot seed the random number generator from the OS: {0}")]
    Entropy(String),
    #[error("local client id {id} is this node's own id or a peer's; reserve an id no node uses")]
    LocalId { id: haven_runtime::NodeId },
    #[error("cannot start the disk worker thread: {0}")]
    DiskThread(std::io::Error),
}
