//! A cluster of real `haven station` processes on loopback, each behind a
//! [`FaultProxy`] on its peer port (test support).
//!
//! In: a scratch directory, the station count and extra station flags; then
//! the test's fault actions (SIGKILL, restart, SIGSTOP, SIGCONT, link
//! faults). Out: running stations whose client endpoints the test talks to,
//! their logs in the scratch directory, and every process killed when the
//! cluster is dropped, even on panic.
//!
//! Station i listens for peers on its own address but the cluster list names
//! its proxy's, so every frame to it passes the proxy, which knows the
//! sender from the connection's hello.

use super::fault_proxy::{FaultProxy, LinkFault};
use haven_client::{Client, ClientConfig, StatusResponse};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one status request may take.
const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug)]
struct Station {
    id: u64,
    listen_peer: SocketAddr,
    client: SocketAddr,
    data_dir: PathBuf,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    initial_cluster: String,
    extra_args: Vec<String>,
    stations: Vec<Station>,
    proxies: Vec<FaultProxy>,
    status: Client,
}

fn free_port() -> TcpListener {
    haven_net::loopback_listener().expect("a free loopback port")
}

impl Cluster {
    /// Allocates addresses and starts the proxies (inside a tokio runtime);
    /// no station runs yet. Station ids are 1..=size.
    pub fn new(dir: &Path, size: u64, extra_args: &[&str]) -> Cluster {
        let mut stations = Vec::new();
        let mut proxies = Vec::new();
        let mut members = Vec::new();
        for id in 1..=size {
            // Released just before the station binds it; below the ephemeral range, so no outgoing
            // connection takes it meanwhile (`haven_net::loopback_listener`).
            let listen_peer = free_port().local_addr().unwrap();
            let client = free_port().local_addr().unwrap();
            let proxy = FaultProxy::start(free_port(), listen_peer).expect("the proxy starts");
            members.push(format!("{id}={}=http://{client}", proxy.addr()));
            let data_dir = dir.join(format!("n{id}"));
            stations.push(Station { id, listen_peer, client, data_dir, child: None });
            proxies.push(proxy);
        }
        let endpoints: Vec<String> = stations.iter().map(|s| format!("http://{}", s.client)).collect();
        let config = ClientConfig { endpoints, request_timeout: STATUS_TIMEOUT, rounds_max: 1, ..Default::default() };
        Cluster {
            dir: dir.to_owned(),
            initial_cluster: members.join(","),
            extra_args: extra_args.iter().map(|s| (*s).to_owned()).collect(),
            stations,
            proxies,
            status: Client::new(config).expect("valid endpoints"),
        }
    }

    /// The scratch directory: logs, and whatever the test leaves for a post-mortem.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ids(&self) -> Vec<u64> {
        self.stations.iter().map(|s| s.id).collect()
    }

    fn station(&mut self, id: u64) -> &mut Station {
        self.stations.iter_mut().find(|s| s.id == id).expect("a station of this cluster")
    }

    /// Where station `id` keeps its data; set before its first start.
    pub fn set_data_dir(&mut self, id: u64, dir: PathBuf) {
        self.station(id).data_dir = dir;
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("n{id}.log"))
    }

    /// Starts station `id` (again, after a kill: same flags, same data).
    pub fn start(&mut self, id: u64) {
        let (initial_cluster, extra_args) = (self.initial_cluster.clone(), self.extra_args.clone());
        let log = std::fs::File::options().create(true).append(true).open(self.log_path(id)).unwrap();
        let station = self.station(id);
        assert!(station.child.is_none(), "n{id} is already running");
        let child = Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["station", "--id", &id.to_string(), "--initial-cluster", &initial_cluster])
            .args(["--listen-peer", &station.listen_peer.to_string()])
            .args(["--listen-client", &station.client.to_string()])
            .arg("--data-dir")
            .arg(&station.data_dir)
            .args(&extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haven station starts");
        station.child = Some(child);
    }

    pub fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id);
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.station(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kill_all(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }

    fn signal(&mut self, id: u64, signal: Signal) {
        let child = self.station(id).child.as_ref().expect("a running station");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"));
        kill(pid, signal).expect("the station can be signalled");
    }

    pub fn pause(&mut self, id: u64) {
        self.signal(id, Signal::SIGSTOP);
    }

    pub fn resume(&mut self, id: u64) {
        self.signal(id, Signal::SIGCONT);
    }

    /// The exit status of station `id` if it has ended on its own.
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        self.station(id).child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.stations.iter().any(|s| s.id == id && s.child.is_some())
    }

    /// Client URLs, starting with station `first`'s.
    pub fn endpoints(&self, first: u64) -> Vec<String> {
        let n = self.stations.len();
        let start = self.stations.iter().position(|s| s.id == first).expect("a station of this cluster");
        (0..n).map(|i| format!("http://{}", self.stations[(start + i) % n].client)).collect()
    }

    pub fn endpoint(&self, id: u64) -> String {
        self.endpoints(id).swap_remove(0)
    }

    /// A client that tries each station once per request, `first` first.
    pub fn client(&self, first: u64, request_timeout: Duration) -> Client {
        let config =
            ClientConfig { endpoints: self.endpoints(first), request_timeout, rounds_max: 1, ..Default::default() };
        Client::new(config).expect("valid endpoints")
    }

    /// The fault of the link `from` → `to` (frames `from` sends to `to`).
    pub fn set_link(&self, from: u64, to: u64, fault: LinkFault) {
        self.proxies[self.index(to)].set(from, fault);
    }

    /// Cuts `id` off from every other station, both ways.
    pub fn isolate(&self, id: u64, fault: LinkFault) {
        for other in self.ids().into_iter().filter(|&o| o != id) {
            self.set_link(id, other, fault);
            self.set_link(other, id, fault);
        }
    }

    pub fn heal(&self) {
        for proxy in &self.proxies {
            proxy.heal();
        }
    }

    /// Frames the proxies swallowed, and connections they dropped.
    pub fn proxy_totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let swallowed = self.proxies.iter().map(|p| p.counts().frames_swallowed.load(Relaxed)).sum();
        let dropped = self.proxies.iter().map(|p| p.counts().connections_dropped.load(Relaxed)).sum();
        (swallowed, dropped)
    }

    fn index(&self, id: u64) -> usize {
        self.stations.iter().position(|s| s.id == id).expect("a station of this cluster")
    }

    pub async fn status(&self, id: u64) -> Option<StatusResponse> {
        self.status.status_of(&self.endpoint(id)).await.ok()
    }

    /// The station among `among` that says it leads, with the highest term
    /// of those that answer; waits up to `timeout`.
    pub async fn leader(&self, among: &[u64], timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut best: Option<(u64, u64)> = None;
            for &id in among.iter().filter(|&&id| self.is_running(id)) {
                if let Some(status) = self.status(id).await.filter(StatusResponse::is_leader)
                    && best.is_none_or(|(term, _)| status.raft_term > term)
                {
                    best = Some((status.raft_term, id));
                }
            }
            if let Some((_, id)) = best {
                return Ok(id);
            }
            if Instant::now() >= deadline {
                return Err(format!("no leader among {among:?} within {timeout:?}; logs in {}", self.dir.display()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until station `id` has applied everything `leader` had
    /// committed when asked: a restarted station has rejoined.
    pub async fn caught_up(&self, id: u64, leader: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut target = None;
        loop {
            if target.is_none() {
                target = self.status(leader).await.map(|s| s.raft_index);
            }
            let applied = self.status(id).await.map(|s| s.raft_applied_index);
            if let (Some(target), Some(applied)) = (target, applied)
                && applied >= target
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("n{id} applied {applied:?}, not n{leader}'s {target:?}, within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The last `lines` lines of a station's log, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
