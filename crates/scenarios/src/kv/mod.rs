//! Station scenarios: replicas running Raft + WAL + store, driven by
//! simulated etcd-style clients, checked for Raft's invariants after every
//! event, and at the end for linearizability of the whole client history
//! (`kv-linearizable`, `membership`; in `lease` the holders' puts and gets
//! with the deletions by expiry), and for lease expiry never beating an
//! acknowledged keep-alive (`lease`).

pub mod bench;
pub mod client;
pub mod faults;
pub mod history;
pub mod invariants;
pub mod lease;
pub mod lease_checks;
pub mod lease_client;
pub mod linearizable;
pub mod load;
pub mod membership;
pub mod node;
pub mod watch_checks;
pub mod watch_client;
