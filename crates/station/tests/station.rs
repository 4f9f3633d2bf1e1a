//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: one link instead of one per file, which
//! took most of CI's test build on 2 cores. Run one file's tests with a
//! filter, e.g. `cargo test -p haven-station --test station auto_compaction::`.

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
