//! The peer map changes while nodes run.
//!
//! In: ping/pong nodes on 127.0.0.1 whose `NodeConfig::peer_updates`
//! channel the test publishes new peer maps on. Out: checks that a member
//! added at runtime talks with the others both ways; that a removed member
//! gets nothing more and is refused; that a removed member that is down is
//! no longer dialled; that a changed address is dialled instead of the old.

mod common;

use common::{PingPong, TempDir, TestNode, bind_any, eventually, test_limits};
use haven_net::{Limits, NodeConfig};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

type Peers = BTreeMap<NodeId, SocketAddr>;

const TICK: Duration = Duration::from_millis(10);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);

/// A running node and the sender of its later peer maps.
struct Member {
    node: TestNode,
    updates: watch::Sender<Peers>,
}

/// Starts node `id` knowing `peers`; its component pings `pinged` every
/// tick (a ping to a node outside the peer map is dropped by the executor).
fn start(id: NodeId, listener: TcpListener, peers: &Peers, pinged: &[NodeId], dir: &TempDir, limits: Limits) -> Member {
    let (updates, peer_updates) = watch::channel(peers.clone());
    let mut config = NodeConfig::new(id, listener.local_addr().unwrap(), peers.clone(), dir.path().to_path_buf());
    config.limits = limits;
    config.peer_updates = Some(peer_updates);
    let node = TestNode::start(config, listener, PingPong::new(pinged.to_vec(), TICK));
    Member { node, updates }
}

fn subset(peers: &Peers, ids: &[NodeId]) -> Peers {
    ids.iter().map(|id| (*id, peers[id])).collect()
}

/// Waits until `node` has `more` pongs from `from` beyond what it has now:
/// proof that ticks went by, used instead of sleeping.
async fn ticks_pass(node: &TestNode, from: NodeId, more: u64) {
    let start = node.pongs_from(from);
    eventually(&format!("{} gets {more} more pongs from {from}", node.id), || node.pongs_from(from) >= start + more)
        .await;
}

async fn three_listeners() -> (Vec<TcpListener>, Peers) {
    let mut listeners = Vec::new();
    let mut peers = Peers::new();
    for id in [N1, N2, N3] {
        let (listener, addr) = bind_any().await;
        peers.insert(id, addr);
        listeners.push(listener);
    }
    (listeners, peers)
}

#[tokio::test]
async fn a_member_added_at_runtime_talks_with_the_others_both_ways() {
    common::capture_logs();
    let (mut listeners, all) = three_listeners().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("peers-add")).collect();
    let everyone = [N1, N2, N3];
    let first_two = subset(&all, &[N1, N2]);
    let l3 = listeners.pop().unwrap();
    let l2 = listeners.pop().unwrap();
    let l1 = listeners.pop().unwrap();
    let mut m1 = start(N1, l1, &first_two, &everyone, &dirs[0], test_limits());
    let mut m2 = start(N2, l2, &first_two, &everyone, &dirs[1], test_limits());
    eventually("nodes 1 and 2 talk", || m1.node.pongs_from(N2) >= 3 && m2.node.pongs_from(N1) >= 3).await;

    let mut m3 = start(N3, l3, &all, &everyone, &dirs[2], test_limits());
    // Node 3 knows the others, but they do not know it yet: its hellos are refused.
    let refused = || m1.node.counters.snapshot().inbound_errors >= 1 && m2.node.counters.snapshot().inbound_errors >= 1;
    eventually("nodes 1 and 2 refuse node 3", refused).await;
    assert_eq!((m1.node.pings_from(N3), m2.node.pings_from(N3), m3.node.pings_from(N1)), (0, 0, 0));

    m1.updates.send(all.clone()).unwrap();
    m2.updates.send(all.clone()).unwrap();
    let all_pongs = |m: &Member| everyone.iter().all(|id| m.node.pongs_from(*id) >= 3);
    eventually("every node has pongs from every node", || all_pongs(&m1) && all_pongs(&m2) && all_pongs(&m3)).await;
    for m in [&m1, &m2, &m3] {
        for id in everyone {
            assert!(m.node.pings_from(id) >= 1, "{} has no ping from {id}", m.node.id);
        }
    }
    for m in [&m1, &m2] {
        let counters = m.node.counters.snapshot();
        assert_eq!((counters.peers_added, counters.peers_removed, counters.peer_addr_changes), (1, 0, 0));
        assert_eq!(counters.connects, 2, "one link per peer, none restarted: {counters:?}");
    }
    assert!(common::captured_log().contains("peer added"));
    for m in [&mut m1, &mut m2, &mut m3] {
        m.node.stop().await;
    }
}

#[tokio::test]
async fn a_removed_member_gets_nothing_more_and_is_refused() {
    common::capture_logs();
    let (listeners, all) = three_listeners().await;
    let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new("peers-remove")).collect();
    let everyone = [N1, N2, N3];
    let mut members: Vec<Member> = listeners
        .into_iter()
        .zip([N1, N2, N3])
        .zip(&dirs)
        .map(|((listener, id), dir)| start(id, listener, &all, &everyone, dir, test_limits()))
        .collect();
    let all_pongs = |m: &Member| everyone.iter().all(|id| m.node.pongs_from(*id) >= 3);
    eventually("the cluster is up", || members.iter().all(all_pongs)).await;

    // Nodes 1 and 2 drop node 3; node 3 is not told and keeps dialling them.
    let two = subset(&all, &[N1, N2]);
    members[0].updates.send(two.clone()).unwrap();
    members[1].updates.send(two).unwrap();
    let (m1, m2, m3) = (&members[0], &members[1], &members[2]);
    eventually("nodes 1 and 2 applied the removal", || {
        m1.node.counters.snapshot().peers_removed == 1 && m2.node.counters.snapshot().peers_removed == 1
    })
    .await;
    // Let what was already on the wire land, then count.
    ticks_pass(&m1.node, N2, 5).await;
    let to3 = (m3.node.pings_from(N1), m3.node.pings_from(N2));
    let from3 = (m1.node.pings_from(N3), m2.node.pings_from(N3));
    let refusals = m1.node.counters.snapshot().inbound_errors;
    let drops = m1.node.counters.snapshot().send_drops;
    ticks_pass(&m1.node, N2, 20).await;
    assert_eq!((m3.node.pings_from(N1), m3.node.pings_from(N2)), to3, "node 3 still hears from 1 or 2");
    assert_eq!((m1.node.pings_from(N3), m2.node.pings_from(N3)), from3, "node 1 or 2 still hears from 3");
    let counters = m1.node.counters.snapshot();
    assert!(counters.inbound_errors > refusals, "node 3 redials and is refused: {counters:?}");
    assert!(counters.send_drops >= drops + 10, "pings to node 3 are dropped: {counters:?}");
    assert!(common::captured_log().contains("peer removed"));
    for m in &mut members {
        m.node.stop().await;
    }
}

#[tokio::test]
async fn a_removed_member_that_is_down_is_not_dialled_again() {
    common::capture_logs();
    let (listener, addr) = bind_any().await;
    // Bound and released: nothing listens there, every dial fails at once.
    let (gone, gone_addr) = bind_any().await;
    drop(gone);
    let peers = Peers::from([(N1, addr), (N2, gone_addr)]);
    let dir = TempDir::new("peers-dead");
    let limits = Limits { reconnect_backoff_ms_min: 2, reconnect_backoff_ms_max: 10, ..test_limits() };
    let mut m1 = start(N1, listener, &peers, &[N1, N2], &dir, limits);
    eventually("node 1 keeps failing to dial node 2", || m1.node.counters.snapshot().connect_errors >= 5).await;

    m1.updates.send(subset(&peers, &[N1])).unwrap();
    eventually("node 1 applied the removal", || m1.node.counters.snapshot().peers_removed == 1).await;
    let failures = m1.node.counters.snapshot().connect_errors;
    // 200 ms or more: a link still running would fail some 20 more times.
    ticks_pass(&m1.node, N1, 20).await;
    let counters = m1.node.counters.snapshot();
    assert!(counters.connect_errors <= failures + 1, "node 2 is still dialled: {failures} then {counters:?}");
    m1.node.stop().await;
}

#[tokio::test]
async fn a_changed_address_is_dialled_instead_of_the_old_one() {
    common::capture_logs();
    let (l1, a1) = bind_any().await;
    let (l2, a2) = bind_any().await;
    let peers = Peers::from([(N1, a1), (N2, a2)]);
    let dirs: Vec<TempDir> = (0..2).map(|_| TempDir::new("peers-move")).collect();
    // Quick redials on node 1, so that dialling the old address would show.
    let quick = Limits { reconnect_backoff_ms_min: 2, reconnect_backoff_ms_max: 20, ..test_limits() };
    let mut m1 = start(N1, l1, &peers, &[N1, N2], &dirs[0], quick);
    let mut m2 = start(N2, l2, &peers, &[N1, N2], &dirs[1], test_limits());
    eventually("nodes 1 and 2 talk", || m1.node.pongs_from(N2) >= 3).await;

    // Node 2 moves to another port; node 1 keeps dialling the old one until told.
    m2.node.stop().await;
    let (l2, moved) = bind_any().await;
    let peers = Peers::from([(N1, a1), (N2, moved)]);
    let mut m2 = start(N2, l2, &peers, &[N1, N2], &dirs[1], test_limits());
    let failures = m1.node.counters.snapshot().connect_errors;
    eventually("node 1 fails to dial the old address", || m1.node.counters.snapshot().connect_errors >= failures + 2)
        .await;
    assert_eq!(m2.node.pings_from(N1), 0, "node 1 cannot have reached the moved node yet");

    m1.updates.send(peers).unwrap();
    eventually("node 2 hears node 1 at its new address", || m2.node.pings_from(N1) >= 3).await;
    let pongs = m1.node.pongs_from(N2);
    eventually("node 1 hears node 2 again", || m1.node.pongs_from(N2) >= pongs + 3).await;
    assert_eq!(m1.node.counters.snapshot().peer_addr_changes, 1);
    // The old address is dialled no more (a link to it would fail every 20 ms at most).
    let failures = m1.node.counters.snapshot().connect_errors;
    ticks_pass(&m1.node, N2, 20).await;
    let counters = m1.node.counters.snapshot();
    assert!(counters.connect_errors <= failures + 1, "old address still dialled: {failures} then {counters:?}");

    // No more updates: the node keeps its map and keeps running.
    drop(m1.updates);
    ticks_pass(&m1.node, N2, 5).await;
    m1.node.stop().await;
    m2.node.stop().await;
}
