//! An in-process client talks to a node's component through
//! `run_with_local`.
//!
//! In: a ping/pong node (peer map: itself only) and a local client on a
//! reserved id. Out: checks that the client's pings reach the component as
//! coming from the reserved id and its pongs come back on the client's
//! channel, not the network; that a client not reading costs dropped
//! messages, never a stalled node; that a local id clashing with a node id
//! is refused before anything starts, and a later peer map naming it is
//! ignored.

mod common;

use common::{PingPong, Stats, TempDir, WAIT_MAX, bind_any, eventually, test_limits};
use haven_net::{NetError, NodeConfig, local_channel};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

const LOCAL: NodeId = NodeId(1_000);

struct Running {
    stats: Arc<Mutex<Stats>>,
    counters: Arc<haven_net::Counters>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), NetError>>,
    _dir: TempDir,
}

async fn start(local: haven_net::LocalEndpoint<common::Msg>, tick: Duration) -> Running {
    let (listener, _) = bind_any().await;
    start_on(listener, local, tick, None)
}

fn start_on(
    listener: tokio::net::TcpListener,
    local: haven_net::LocalEndpoint<common::Msg>,
    tick: Duration,
    peer_updates: Option<watch::Receiver<BTreeMap<NodeId, std::net::SocketAddr>>>,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let dir = TempDir::new("local");
    let mut config = NodeConfig::new(NodeId(1), addr, BTreeMap::from([(NodeId(1), addr)]), dir.path().into());
    config.limits = test_limits();
    config.peer_updates = peer_updates;
    let counters = config.counters.clone();
    let stats = Arc::new(Mutex::new(Stats::default()));
    let sink = stats.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let component = PingPong::new(vec![NodeId(1)], tick);
    let on_output = move |out| sink.lock().unwrap().record(out);
    let task = tokio::spawn(haven_net::run_with_local(config, Some(listener), component, on_output, shutdown, local));
    Running { stats, counters, stop, task, _dir: dir }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(WAIT_MAX, self.task).await.expect("node stops in time");
        result.expect("no panic").expect("node ran without error");
    }
}

#[tokio::test]
async fn local_pings_come_from_the_reserved_id_and_pongs_come_back_locally() {
    common::capture_logs();
    let (endpoint, mut client) = local_channel(LOCAL, 16);
    let node = start(endpoint, Duration::from_millis(20)).await;
    for seq in 0..10 {
        client.tx.send(common::Msg::Ping(seq)).await.expect("the node is running");
        let pong = tokio::time::timeout(WAIT_MAX, client.rx.recv()).await.expect("a pong in time");
        assert_eq!(pong, Some(common::Msg::Pong(seq)));
    }
    assert_eq!(node.stats.lock().unwrap().pings_from(LOCAL), 10);
    let counters = node.counters.snapshot();
    assert_eq!((counters.local_in, counters.local_out, counters.local_drops), (10, 10, 0), "{counters:?}");
    assert_eq!(counters.frames_out, 0, "nothing went to the network: {counters:?}");
    node.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_costs_drops_not_progress() {
    common::capture_logs();
    let (endpoint, client) = local_channel(LOCAL, 4);
    let node = start(endpoint, Duration::from_millis(2)).await;
    for seq in 0..4 {
        client.tx.send(common::Msg::Ping(seq)).await.expect("the node is running");
    }
    // Four pongs fill the client's channel; the next pings' pongs are dropped.
    eventually("four pongs queued", || node.counters.snapshot().local_out == 4).await;
    for seq in 4..10 {
        client.tx.send(common::Msg::Ping(seq)).await.expect("the node is running");
    }
    eventually("six pongs dropped", || node.counters.snapshot().local_drops == 6).await;
    // The node's own ping/pong timer loop keeps going.
    let pongs = node.stats.lock().unwrap().pongs_from(NodeId(1));
    eventually("self pongs keep coming", || node.stats.lock().unwrap().pongs_from(NodeId(1)) >= pongs + 10).await;
    let mut rx = client.rx;
    let queued: Vec<common::Msg> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(queued, (0..4).map(common::Msg::Pong).collect::<Vec<_>>(), "the oldest are kept");
    node.stop().await;
}

#[tokio::test]
async fn a_local_id_that_is_a_node_id_is_refused() {
    let (listener, addr) = bind_any().await;
    let dir = TempDir::new("local-clash");
    let peers = BTreeMap::from([(NodeId(1), addr), (NodeId(2), addr)]);
    for clash in [NodeId(1), NodeId(2)] {
        let config = NodeConfig::new(NodeId(1), addr, peers.clone(), dir.path().into());
        let (endpoint, _client) = local_channel::<common::Msg>(clash, 4);
        let component = PingPong::new(vec![NodeId(1)], Duration::from_millis(10));
        let result = haven_net::run_with_local(config, None, component, |_| {}, async {}, endpoint).await;
        assert!(matches!(result, Err(NetError::LocalId { id }) if id == clash), "{result:?}");
    }
    drop(listener);
}

#[tokio::test]
async fn a_peer_map_naming_the_local_id_is_ignored() {
    common::capture_logs();
    let (listener, addr) = bind_any().await;
    let (gone, dead) = bind_any().await;
    drop(gone);
    let (updates, peer_updates) = watch::channel(BTreeMap::from([(NodeId(1), addr)]));
    let (endpoint, mut client) = local_channel(LOCAL, 16);
    let node = start_on(listener, endpoint, Duration::from_millis(20), Some(peer_updates));

    // Refused as a whole: node 2 is not added, replies to LOCAL stay local.
    updates.send(BTreeMap::from([(NodeId(1), addr), (NodeId(2), dead), (LOCAL, dead)])).unwrap();
    eventually("the update is refused", || common::captured_log().contains("peer map update refused")).await;
    client.tx.send(common::Msg::Ping(7)).await.expect("the node is running");
    let pong = tokio::time::timeout(WAIT_MAX, client.rx.recv()).await.expect("a pong in time");
    assert_eq!(pong, Some(common::Msg::Pong(7)));
    assert_eq!(node.counters.snapshot().peers_added, 0);

    // The next, valid map is applied.
    updates.send(BTreeMap::from([(NodeId(1), addr), (NodeId(2), dead)])).unwrap();
    eventually("node 2 is added", || node.counters.snapshot().peers_added == 1).await;
    node.stop().await;
}
