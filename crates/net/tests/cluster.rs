//! Three nodes in one process exchange pings and pongs over real TCP.
//!
//! In: a ping/pong component on nodes 1..=3 (127.0.0.1, port 0). Out:
//! checks that messages flow both ways between every pair and to self, that
//! timers fire and cancelled ones do not, that outputs reach the callback,
//! that counters move, and that a node whose peer is unreachable drops
//! messages rather than stalling.

mod common;

use common::{Cluster, PingPong, TempDir, TestNode, bind_any, eventually, test_limits};
use haven_net::{Limits, NodeConfig};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn three_nodes_exchange_messages_both_ways_and_timers_behave() {
    common::capture_logs();
    let mut cluster = Cluster::start(3, Duration::from_millis(10)).await;
    eventually("every node has 5 pongs from every node", || cluster.all_pongs_at_least(5)).await;
    for node in &cluster.nodes {
        let stats = node.stats.lock().unwrap();
        assert_eq!(stats.started, 1);
        for peer in cluster.peers.keys() {
            assert!(stats.pings_from(*peer) >= 5, "{} has {} pings from {peer}", node.id, stats.pings_from(*peer));
        }
        // `Once` (30 ms) fired; `Cancelled` (10 ms, cancelled at once) never did.
        assert_eq!(stats.fired, vec!["once"], "{}", node.id);
        let counters = node.counters.snapshot();
        assert!(counters.frames_in >= 10 && counters.frames_out >= 10, "{counters:?}");
        assert!(counters.bytes_in > counters.frames_in * 9, "headers alone are 9 bytes: {counters:?}");
        assert!(counters.messages_local >= 10, "self-sends go through the local path: {counters:?}");
        assert_eq!(counters.connects, 2, "one outbound connection per peer: {counters:?}");
        assert_eq!(counters.inbound_errors, 0, "{counters:?}");
        assert!(counters.outputs >= 30, "{counters:?}");
    }
    cluster.stop().await;
}

#[tokio::test]
async fn an_unreachable_peer_costs_drops_not_progress() {
    common::capture_logs();
    let (listener, addr) = bind_any().await;
    // A port that was bound and released: nothing listens there.
    let (gone, gone_addr) = bind_any().await;
    drop(gone);
    let peers = BTreeMap::from([(NodeId(1), addr), (NodeId(2), gone_addr)]);
    let dir = TempDir::new("unreachable");
    let mut config = NodeConfig::new(NodeId(1), addr, peers.clone(), dir.path().to_path_buf());
    config.limits = Limits { send_queue_len_max: 8, ..test_limits() };
    let component = PingPong::new(peers.keys().copied().collect(), Duration::from_millis(2));
    let mut node = TestNode::start(config, listener, component);
    eventually("the queue to the dead peer overflows", || node.counters.snapshot().send_drops >= 20).await;
    // The event loop kept going: self pings keep being answered.
    let pongs = node.pongs_from(NodeId(1));
    eventually("self pongs keep coming", || node.pongs_from(NodeId(1)) >= pongs + 20).await;
    assert!(node.counters.snapshot().connect_errors >= 1);
    node.stop().await;
}
