//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: one link instead of one per file, which
//! took most of CI's test build on 2 cores. Run one file's tests with a
//! filter, e.g. `cargo test -p haven-sim --test sim checks::`.

mod checks;
mod common;
mod determinism;
mod disk;
mod network;
mod nodes;
