//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: compiled and linked once instead of once
//! per file (the per-file binaries took over a third of a clean test
//! build's CPU on 2 cores). Run one file's tests with a filter, e.g.
//! `cargo test -p haven-sim --test sim checks::`.

mod checks;
mod common;
mod determinism;
mod disk;
mod network;
mod nodes;
