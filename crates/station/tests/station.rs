//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: compiled and linked once instead of once
//! per file (the per-file binaries took over a third of a clean test
//! build's CPU on 2 cores). Run one file's tests with a filter, e.g.
//! `cargo test -p haven-station --test station auto_compaction::`.

mod auto_compaction;
mod backup;
mod batching;
mod common;
mod ha;
mod ha_fence;
mod ha_proxy;
mod leases;
mod members;
mod relay;
mod serializable;
mod snapshot_after_restart;
