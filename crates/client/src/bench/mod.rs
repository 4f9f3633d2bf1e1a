//! `haven bench kv|failover|fsync`: benchmarks over the etcd v3 JSON API
//! that measure Haven and etcd with the same client, plus the disk's fsync
//! floor they are both bounded by.
//!
//! In: parsed arguments (loopback endpoints only). Out: tables (or one JSON
//! line per result) on stdout.

mod connection;
pub mod failover;
pub mod fsync;
pub mod histogram;
pub mod kv;
mod stopped;

use crate::endpoint::is_loopback;
use crate::error::ClientError;
use clap::ValueEnum;

pub use failover::FailoverBenchArgs;
pub use fsync::FsyncBenchArgs;
pub use kv::KvBenchArgs;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BenchOutput {
    #[default]
    Table,
    /// One JSON object per line, for scripts.
    Json,
}

/// Benchmarks load and freeze processes: never aim them at another machine.
pub(crate) fn check_loopback(endpoints: &[String]) -> Result<(), ClientError> {
    match endpoints.iter().find(|endpoint| !is_loopback(endpoint)) {
        Some(endpoint) => Err(ClientError::Bench(format!(
            "{endpoint} is not a loopback address: benchmarks run only against clusters on this machine \
             (127.0.0.1, ::1 or localhost)"
        ))),
        None => Ok(()),
    }
}
