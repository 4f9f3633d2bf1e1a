//! Shared pieces of the integration tests.
//!
//! In: node ids and test parameters. Out: a ping/pong test component whose
//! outputs land in [`Stats`], helpers that bind, start, stop and restart
//! nodes on 127.0.0.1, a self-removing temporary directory, and a captured
//! log the tests can search.

#![allow(dead_code)]

use haven_net::{Counters, Limits, NetError, NodeConfig};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for anything a test waits for.
pub const WAIT_MAX: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    Ping(u64),
    Pong(u64),
}

#[derive(Debug)]
pub enum Timer {
    Tick,
    Once,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Started,
    Ping { from: NodeId },
    Pong { from: NodeId },
    Fired(&'static str),
}

/// Pings every peer (and itself) each `tick`, answers pings with pongs, and
/// on start sets one timer that fires and one it cancels at once.
#[derive(Debug)]
pub struct PingPong {
    pub peers: Vec<NodeId>,
    pub tick: Duration,
    seq: u64,
}

impl PingPong {
    pub fn new(peers: Vec<NodeId>, tick: Duration) -> Self {
        PingPong { peers, tick, seq: 0 }
    }
}

impl Component for PingPong {
    type Msg = Msg;
    type Timer = Timer;
    type Io = ();
    type Out = Out;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        ctx.output(Out::Started);
        ctx.set_timer(self.tick, Timer::Tick);
        ctx.set_timer(Duration::from_millis(30), Timer::Once);
        let doomed = ctx.set_timer(Duration::from_millis(10), Timer::Cancelled);
        ctx.cancel_timer(doomed);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Ping(seq) => {
                ctx.output(Out::Ping { from });
                ctx.send(from, Msg::Pong(seq));
            }
            Msg::Pong(_) => ctx.output(Out::Pong { from }),
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, timer: Timer) {
        match timer {
            Timer::Tick => {
                self.seq += 1;
                for peer in self.peers.clone() {
                    ctx.send(peer, Msg::Ping(self.seq));
                }
                ctx.set_timer(self.tick, Timer::Tick);
            }
            Timer::Once => ctx.output(Out::Fired("once")),
            Timer::Cancelled => ctx.output(Out::Fired("cancelled")),
        }
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, _tag: (), _result: IoResult) {}
}

/// What one node's outputs told us.
#[derive(Debug, Default)]
pub struct Stats {
    pub started: u64,
    pub pings: BTreeMap<NodeId, u64>,
    pub pongs: BTreeMap<NodeId, u64>,
    pub fired: Vec<&'static str>,
}

impl Stats {
    pub fn record(&mut self, out: Out) {
        match out {
            Out::Started => self.started += 1,
            Out::Ping { from } => *self.pings.entry(from).or_default() += 1,
            Out::Pong { from } => *self.pongs.entry(from).or_default() += 1,
            Out::Fired(name) => self.fired.push(name),
        }
    }

    pub fn pongs_from(&self, node: NodeId) -> u64 {
        self.pongs.get(&node).copied().unwrap_or(0)
    }

    pub fn pings_from(&self, node: NodeId) -> u64 {
        self.pings.get(&node).copied().unwrap_or(0)
    }
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("haven-net-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Limits that make tests quick: short backoff and hello timeout.
pub fn test_limits() -> Limits {
    Limits {
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 200,
        hello_timeout_ms_max: 2_000,
        ..Limits::default()
    }
}

pub async fn bind_any() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// A node running in a tokio task, with what the test observes of it.
#[derive(Debug)]
pub struct TestNode {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub stats: Arc<Mutex<Stats>>,
    pub counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), NetError>>>,
}

impl TestNode {
    /// Starts `component` under `config` on `listener`.
    pub fn start<C>(config: NodeConfig, listener: TcpListener, component: C) -> TestNode
    where
        C: Component<Out = Out> + Send + 'static,
        C::Timer: Send,
        C::Io: Send,
    {
        let stats = Arc::new(Mutex::new(Stats::default()));
        let sink = stats.clone();
        let on_output = move |out| sink.lock().unwrap().record(out);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (id, addr, counters) = (config.id, listener.local_addr().unwrap(), config.counters.clone());
        let task = tokio::spawn(haven_net::run(config, Some(listener), component, on_output, shutdown));
        TestNode { id, addr, stats, counters, stop: Some(stop), task: Some(task) }
    }

    /// Signals shutdown and waits for `run` to return.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(WAIT_MAX, task).await.expect("node stops in time");
            result.expect("node task did not panic").expect("node ran without error");
        }
    }

    pub fn pongs_from(&self, node: NodeId) -> u64 {
        self.stats.lock().unwrap().pongs_from(node)
    }

    pub fn pings_from(&self, node: NodeId) -> u64 {
        self.stats.lock().unwrap().pings_from(node)
    }
}

/// A ping/pong cluster of `n` nodes with ids 1..=n, each with its own data dir.
pub struct Cluster {
    pub nodes: Vec<TestNode>,
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub dirs: Vec<TempDir>,
}

impl Cluster {
    pub async fn start(n: u64, tick: Duration) -> Cluster {
        let mut listeners = Vec::new();
        let mut peers = BTreeMap::new();
        for id in 1..=n {
            let (listener, addr) = bind_any().await;
            peers.insert(NodeId(id), addr);
            listeners.push(listener);
        }
        let dirs: Vec<TempDir> = (1..=n).map(|_| TempDir::new("cluster")).collect();
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = NodeId(i as u64 + 1);
            let config = Cluster::config_for(id, &peers, dirs[i].path());
            let component = PingPong::new(peers.keys().copied().collect(), tick);
            nodes.push(TestNode::start(config, listener, component));
        }
        Cluster { nodes, peers, dirs }
    }

    pub fn config_for(id: NodeId, peers: &BTreeMap<NodeId, SocketAddr>, dir: &Path) -> NodeConfig {
        let mut config = NodeConfig::new(id, peers[&id], peers.clone(), dir.to_path_buf());
        config.limits = test_limits();
        config
    }

    /// True once every node has `count` pongs from every node (itself included).
    pub fn all_pongs_at_least(&self, count: u64) -> bool {
        self.nodes.iter().all(|node| self.peers.keys().all(|peer| node.pongs_from(*peer) >= count))
    }

    pub async fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop().await;
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `WAIT_MAX` passes.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(WAIT_MAX, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting until {what}");
}

/// Everything logged in this test process, as plain text.
pub fn captured_log() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// Installs (once per process) a subscriber that writes every log line to
/// the capture buffer and to stderr (shown for failing tests).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(|| CaptureWriter).finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static BUFFER: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    BUFFER.get_or_init(|| Mutex::new(Vec::new()))
}

struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        // Through eprint! so the test harness captures it per test.
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
