//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: compiled and linked once instead of once
//! per file (the per-file binaries took over a third of a clean test
//! build's CPU on 2 cores). Run one file's tests with a filter, e.g.
//! `cargo test -p haven-scenarios --test scenarios determinism::`.

mod common;
mod determinism;
mod ha_failover_sweep_slice;
mod ha_fence_device;
mod ha_planted_bugs;
mod ha_proxies;
mod ha_scale_slice;
mod kv_planted_bugs;
mod kv_sweep_slice;
mod kv_watch_planted_bug;
mod lease_planted_bug;
mod lease_sweep_slice;
mod planted_bugs;
mod raft_planted_bugs;
mod sweep_slice;
mod test_layout;
