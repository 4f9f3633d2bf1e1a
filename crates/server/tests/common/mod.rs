//! Support for the real-process fault tests (tests/faults.rs): a TCP fault
//! proxy between stations, a cluster of `haven station` processes behind
//! such proxies, a recorded client workload, a resuming prefix watcher, a
//! tmpfs guard and the end-of-run checks.

#![allow(dead_code)] // each test file uses its own part

pub mod checks;
pub mod cluster;
pub mod fault_proxy;
pub mod tmpfs;
pub mod watcher;
pub mod workload;
