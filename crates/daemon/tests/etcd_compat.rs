//! Compatibility with the real thing, for real stations: the shared etcd
//! comparison (`crates/gateway/tests/compat`) replayed against a
//! single-station Haven cluster, so every answer goes through Raft, the
//! WAL, the lessor and the replicated member table, and against a follower
//! of a three-station cluster, so writes are relayed to the leader, reads
//! wait for its read index and watches are served by the follower; each
//! compared field by field with an etcd of as many members.

mod common;
#[path = "../../gateway/tests/compat/mod.rs"]
mod compat;

use common::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_answers_like_etcd() {
    let Some(binary) = compat::etcd_or_skip() else { return };
    let cluster = Cluster::start("etcd-compat", 1, 5_000);
    cluster.wait_for_leader(&[1]).await;
    compat::compare_with_etcd(&binary, 1, &cluster.client_url(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_like_etcd() {
    let Some(binary) = compat::etcd_or_skip() else { return };
    let cluster = Cluster::start("etcd-compat-follower", 3, 5_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let follower = cluster.follower_of(leader);
    compat::compare_with_etcd(&binary, 3, &cluster.client_url(follower)).await;
}
