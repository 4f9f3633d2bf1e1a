//! Every integration test of this crate, one module per file beside this
//! one, in a single test binary: compiled and linked once instead of once
//! per file (the per-file binaries took over a third of a clean test
//! build's CPU on 2 cores). Run one file's tests with a filter, e.g.
//! `cargo test -p haven-raft --test raft cluster_invariants::`.

mod cluster_invariants;
mod common;
mod hostile_input;
mod planted_bugs;
mod s3_10_leadership_transfer;
mod s5_2_election;
mod s5_2_election_after_a_stall;
mod s5_3_replication;
mod s5_4_safety;
mod s6_4_1_lease_reads;
mod s6_4_read_index;
mod s6_membership;
mod s7_log_compaction;
