//! Why `haven station` stopped with an error.
//!
//! In: failures at start (configuration, ports, data directory, executor)
//! and while running (the replica halted, the HTTP server failed).
//! Out: a [`DaemonError`] whose message says what to do.

use crate::config_error::ConfigError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the executor could not start: {0}")]
    Net(#[from] haven_net::NetError),
    #[error(
        "the replica stopped: {reason}; fix the cause (e.g. free disk space) and restart: the data directory holds every acknowledged write"
    )]
    Replica { reason: String },
    #[error("the client API server failed: {0}")]
    Http(std::io::Error),
    #[error("cannot draw client ids from the OS: {0}")]
    Entropy(String),
    #[error("a task of the station panicked: {0}")]
    Panicked(String),
}
