//! The client and CLI commands against a real station, the same commands
//! and the same expected output as against a real etcd
//! (`crates/client/tests/commands`, included by path): a single-station
//! cluster, so every command goes through Raft, the WAL and the lessor.

#[path = "../../client/tests/commands/mod.rs"]
mod commands;
mod common;

use common::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_against_a_station() {
    let cluster = Cluster::start("cli-commands", 1, 5_000);
    cluster.wait_for_leader(&[1]).await;
    commands::run_all(&cluster.client_url(1), "n1").await;
}
