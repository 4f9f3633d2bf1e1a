//! Station scenarios: replicas running Raft + WAL + store, driven by
//! simulated etcd-style clients, checked for Raft's invariants after every
//! event and for linearizability of the whole client history at the end.

pub mod bench;
pub mod client;
pub mod history;
pub mod invariants;
pub mod linearizable;
pub mod load;
pub mod node;
