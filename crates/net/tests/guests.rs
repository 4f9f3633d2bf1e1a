//! A node that dials in from outside the peer map, or from another cluster.
//!
//! In: two ping/pong nodes; node 2 knows node 1, node 1 knows nobody but
//! has an `unknown_peers` hook that puts whoever dials in into its next
//! peer map. Out: checks that node 2's hello names the address node 2
//! advertises, that the first connection is refused, and that once node 1's
//! map has node 2 both directions carry messages; and that while the two
//! name different clusters, node 1 refuses node 2 before asking the hook.

mod common;

use common::{Cluster, PingPong, TempDir, TestNode, bind_any, eventually};
use haven_net::UnknownPeers;
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[tokio::test]
async fn a_node_outside_the_map_is_told_with_its_address_and_can_be_taken_in() {
    let tick = Duration::from_millis(10);
    let ((listener1, addr1), (listener2, addr2)) = (bind_any().await, bind_any().await);
    let dirs = (TempDir::new("guest-host"), TempDir::new("guest"));

    let told: Arc<Mutex<Vec<(NodeId, SocketAddr)>>> = Arc::default();
    let (maps, map_updates) = watch::channel(BTreeMap::from([(NodeId(1), addr1)]));
    let mut host = Cluster::config_for(NodeId(1), &BTreeMap::from([(NodeId(1), addr1)]), dirs.0.path());
    host.peer_updates = Some(map_updates);
    let seen = told.clone();
    host.unknown_peers = Some(UnknownPeers(Arc::new(move |node, addr| {
        seen.lock().unwrap().push((node, addr));
        maps.send_modify(|map| {
            map.insert(node, addr);
        });
        true
    })));
    host.cluster = Arc::new(AtomicU64::new(7));
    let host = TestNode::start(host, listener1, PingPong::new(vec![NodeId(1), NodeId(2)], tick));

    let both = BTreeMap::from([(NodeId(1), addr1), (NodeId(2), addr2)]);
    let mut guest = Cluster::config_for(NodeId(2), &both, dirs.1.path());
    guest.advertise = Some(addr2);
    let guest_cluster = Arc::new(AtomicU64::new(9));
    guest.cluster = guest_cluster.clone();
    let guest = TestNode::start(guest, listener2, PingPong::new(vec![NodeId(1), NodeId(2)], tick));

    eventually("node 1 refuses node 2's hellos: another cluster", || host.counters.snapshot().inbound_errors >= 2)
        .await;
    assert!(told.lock().unwrap().is_empty(), "refused before the hook is asked");
    assert_eq!(host.pongs_from(NodeId(2)), 0);
    guest_cluster.store(7, Ordering::Relaxed);

    eventually("node 1 takes node 2 in and both ping each other", || {
        host.pongs_from(NodeId(2)) >= 3 && guest.pongs_from(NodeId(1)) >= 3
    })
    .await;
    let told = told.lock().unwrap().clone();
    assert_eq!(told.first(), Some(&(NodeId(2), addr2)), "the hello names where node 2 is dialled");
    assert!(host.counters.snapshot().inbound_errors >= 1, "the first hello was refused");
}
