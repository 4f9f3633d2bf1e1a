//! Haven's production executor.
//!
//! In: one node's top [`haven_runtime::Component`], a [`NodeConfig`] (id,
//! listening address, peers' addresses and, optionally, later versions of
//! them, data directory, [`Limits`]) and a shutdown signal.
//! Out: the component running against the real world — TCP links to its
//! peers with framed, versioned, checksummed messages; a disk worker on its
//! data directory; timers on the monotonic clock; an RNG seeded by the OS —
//! with its outputs logged and handed to the caller, and [`Counters`] the
//! caller can read.
//!
//! The contract is exactly the runtime's: sends are best effort (a full
//! per-peer queue drops, a broken connection loses or repeats what was in
//! flight), timers fire at or after their deadline unless cancelled, and
//! disk operations follow the semantics stated in `haven_runtime::disk`.
//!
//! In-process clients (the station daemon's API handlers) talk to the
//! component through a [`LocalEndpoint`] given to [`run_with_local`].
//!
//! Layout: [`run`] (node.rs) wires the parts; the event loop
//! (event_loop.rs) drives the component's `Host`; network.rs keeps the
//! current peers' links and accept set; link.rs sends to one peer,
//! acceptor.rs and inbound.rs receive; [`frame`] is the wire format;
//! disk.rs and disk_ops.rs execute disk requests, through the handles
//! open_files.rs keeps open.

mod acceptor;
mod backoff;
mod coalesce;
mod config;
mod counters;
mod disk;
mod disk_ops;
mod error;
mod event_loop;
pub mod frame;
mod inbound;
mod link;
mod listen;
mod local;
mod network;
mod node;
mod open_files;
mod ports;
mod send_queue;
mod timers;

pub use config::{FRAME_BYTES_MAX_FLOOR, LEN_MAX_CEILING, Limits, NodeConfig, UnknownPeers};
pub use counters::{Counters, CountersSnapshot, LATENCY_BUCKETS_LEN, LATENCY_BUCKETS_US, Latencies};
pub use error::NetError;
pub use listen::{ACCEPT_QUEUE_LEN_MAX, listen};
pub use local::{LocalClient, LocalEndpoint, local_channel};
pub use node::{run, run_with_local};
pub use ports::{LOOPBACK_PORT_FIRST, LOOPBACK_PORTS_LEN, loopback_listener};
