//! Why a station configuration was refused.
//!
//! In: whatever check failed while loading or validating the settings.
//! Out: one error per mistake, whose message names the field (as a flag;
//! the config-file key and the `HAVEN_*` variable carry the same name) and
//! says what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

/// The form of one `--initial-cluster` entry, shown in errors.
pub const MEMBER_EXAMPLE: &str = "1=127.0.0.1:2380=http://127.0.0.1:2379";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{flag} is required: {hint}")]
    Missing { flag: &'static str, hint: &'static str },
    #[error("cannot read --config {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("--config {path}: {message}; keys are the flag names with underscores, e.g. data_dir = \"/var/lib/haven\"")]
    FileSyntax { path: PathBuf, message: String },
    #[error("--id {id} is reserved; use an id from 1 to {max}", max = u64::MAX - 1)]
    ReservedId { id: u64 },
    #[error(
        "--initial-cluster entry \"{entry}\": {reason}; write id=peer_ip:port=http://client_host:port, e.g. {MEMBER_EXAMPLE}"
    )]
    ClusterEntry { entry: String, reason: String },
    #[error("--initial-cluster is empty; list every member, e.g. {MEMBER_EXAMPLE}")]
    NoMembers,
    #[error("--initial-cluster lists member id {id} twice; give every member its own id")]
    DuplicateId { id: u64 },
    #[error(
        "--initial-cluster: {what} {addr} is given to members {first} and {second}; give every member its own ports"
    )]
    DuplicateAddr { what: &'static str, addr: String, first: u64, second: u64 },
    #[error("--id {id} is not in --initial-cluster (members: {members}); add an entry for it or fix --id")]
    NotAMember { id: u64, members: String },
    #[error(
        "--listen-client is required: this member's client URL {url} is not an IP:port; give the address to listen on, e.g. --listen-client 0.0.0.0:2379"
    )]
    ClientAddr { url: String },
    #[error("{flag} must be at least 1")]
    Zero { flag: &'static str },
    #[error(
        "--election-timeout-ms ({election_ms}) must be above twice --heartbeat-ms ({heartbeat_ms}); raise it to at least {min} or lower the heartbeat",
        min = 2 * heartbeat_ms + 1
    )]
    Timing { election_ms: u64, heartbeat_ms: u64 },
    #[error("--request-bytes-max {value} is outside {min}..={max}; etcd's default is 1572864 (1.5 MiB)")]
    RequestBytes { value: u64, min: u64, max: u64 },
    #[error(
        "--client-connections-max {value} is outside 1..={max}; the default, 10000, suits most clusters (each agent holds one or two)"
    )]
    ClientConnections { value: u64, max: u64 },
    #[error(
        "--worker-threads {value} is outside 1..={max}; leave it unset for one per core, or give each of several stations on one machine its share of the cores"
    )]
    WorkerThreads { value: u64, max: u64 },
    #[error(
        "--data-dir {path} is not writable ({reason}); choose a directory this user can write, or fix its permissions"
    )]
    DataDir { path: PathBuf, reason: String },
    #[error(
        "{flag} {addr}: cannot listen ({source}); another process may hold the port: stop it or change {flag} (and this member's --initial-cluster entry)"
    )]
    PortInUse { flag: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Fence(#[from] crate::fence::FenceSetupError),
}
