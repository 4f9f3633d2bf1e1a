//! The `haven` binary's library: everything the command line does, so the
//! integration tests can drive the same code.
//!
//! In: parsed command-line arguments. Out: running nodes, the demo's
//! narration, the simulator's reports, stations and the client commands.

pub mod agent;
pub mod agent_cmd;
pub mod bench_cmd;
pub mod bench_failover_ha;
pub mod bench_store;
pub mod cli;
pub mod client_cmd;
pub mod coordinator_bench;
pub mod demo;
pub mod demo_service;
pub mod event_line;
pub mod ha_cluster;
pub mod ha_demo;
pub mod ha_processes;
pub mod local_cluster;
pub mod node_cmd;
pub mod open_files;
pub mod proxy;
pub mod proxy_cmd;
pub mod scale_cmd;
pub mod service_start;
pub mod sim_cmd;
pub mod snapshot_cmd;
pub mod station_cmd;
pub mod up;
