//! Compatibility with the real thing, for a real station: the shared etcd
//! comparison (`crates/gateway/tests/compat`) replayed against a
//! single-station Haven cluster, so every answer goes through Raft, the
//! WAL, the lessor and the replicated member table, and is compared field
//! by field with a single-member etcd's.

mod common;
#[path = "../../gateway/tests/compat/mod.rs"]
mod compat;

use common::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_answers_like_etcd() {
    let Some(binary) = compat::etcd_or_skip() else { return };
    let cluster = Cluster::start("etcd-compat", 1, 5_000);
    cluster.wait_for_leader(&[1]).await;
    compat::compare_with_etcd(&binary, &cluster.client_url(1)).await;
}
