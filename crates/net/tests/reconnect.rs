//! A node stops and comes back on the same port.
//!
//! In: a 3-node ping/pong cluster; node 2 is shut down, then started again
//! on its old address with a fresh component and the same data dir.
//! Out: checks that traffic to node 2 stops while it is down, that the
//! others keep talking, and that messages flow both ways again afterwards.

mod common;

use common::{Cluster, PingPong, TestNode, eventually};
use haven_runtime::NodeId;
use std::time::Duration;
use tokio::net::TcpListener;

#[tokio::test]
async fn a_restarted_node_is_reconnected_both_ways() {
    common::capture_logs();
    let tick = Duration::from_millis(10);
    let mut cluster = Cluster::start(3, tick).await;
    let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
    eventually("the cluster is up", || cluster.all_pongs_at_least(3)).await;

    cluster.nodes[1].stop().await;
    let node1 = &cluster.nodes[0];
    // Pongs already in flight may still land; after that, silence.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = node1.pongs_from(n2);
    let before3 = cluster.nodes[2].pongs_from(n2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node1.pongs_from(n2), before, "a stopped node answered");
    assert_eq!(cluster.nodes[2].pongs_from(n2), before3, "a stopped node answered");
    let from3 = node1.pongs_from(n3);
    eventually("nodes 1 and 3 keep talking", || cluster.nodes[0].pongs_from(n3) >= from3 + 5).await;

    let addr = cluster.peers[&n2];
    let listener = TcpListener::bind(addr).await.expect("the stopped node's port is free again");
    let config = Cluster::config_for(n2, &cluster.peers, cluster.dirs[1].path());
    let component = PingPong::new(cluster.peers.keys().copied().collect(), tick);
    cluster.nodes[1] = TestNode::start(config, listener, component);

    let restarted = &cluster.nodes[1];
    eventually("node 1 hears node 2 again", || cluster.nodes[0].pongs_from(n2) >= before + 5).await;
    eventually("node 3 hears node 2 again", || cluster.nodes[2].pongs_from(n2) >= before3 + 5).await;
    eventually("node 2 hears nodes 1 and 3", || restarted.pongs_from(n1) >= 5 && restarted.pongs_from(n3) >= 5).await;
    assert!(cluster.nodes[0].counters.snapshot().connect_errors >= 1, "node 1 saw its link to node 2 fail");
    cluster.stop().await;
}
