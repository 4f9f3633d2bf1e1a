//! A cluster of stations in one test process, each on its own tokio
//! runtime so that it can be killed abruptly (the runtime is dropped with
//! every task in it, nothing flushed or closed in order: what a SIGKILL
//! leaves is what the WAL made durable).
//!
//! In: a member count. Out: running stations on loopback ports, an etcd
//! JSON client for them, and crash / restart / stop controls.

#![allow(dead_code)] // each test file uses its own part

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use haven_daemon::{DaemonError, StationArgs, StationConfig, run_until};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const WAIT_MAX: Duration = Duration::from_secs(20);

pub struct Member {
    pub id: u64,
    pub config: StationConfig,
    running: Option<Running>,
}

struct Running {
    runtime: tokio::runtime::Runtime,
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<Result<(), DaemonError>>,
}

pub struct Cluster {
    pub members: Vec<Member>,
    pub http: reqwest::Client,
    dir: PathBuf,
}

/// `count` distinct free loopback addresses. Every listener stays open until
/// all are chosen: dropped one by one, the OS may hand out a port twice
/// (CI once got the same port for two members). Below the ephemeral range
/// (`haven_net::loopback_listener`), so no outgoing connection takes one
/// before its station binds it.
fn free_addrs(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| haven_net::loopback_listener().expect("a free loopback port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("bound")).collect()
}

impl Cluster {
    /// `n` stations with request timeout `request_timeout_ms`, started.
    pub fn start(tag: &str, n: u64, request_timeout_ms: u64) -> Cluster {
        let mut cluster = Cluster::prepare(tag, n, request_timeout_ms);
        for id in 1..=n {
            cluster.launch(id);
        }
        cluster
    }

    /// As [`Cluster::start`], without starting the stations: each starts
    /// on [`Cluster::launch`].
    pub fn prepare(tag: &str, n: u64, request_timeout_ms: u64) -> Cluster {
        let dir = std::env::temp_dir().join(format!("haven-daemon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let free = free_addrs(2 * n as usize);
        let addrs: Vec<(SocketAddr, SocketAddr)> = free.chunks(2).map(|pair| (pair[0], pair[1])).collect();
        let list: Vec<String> =
            addrs.iter().enumerate().map(|(i, (peer, client))| format!("{}={peer}=http://{client}", i + 1)).collect();
        let mut members = Vec::new();
        for id in 1..=n {
            let args = StationArgs {
                id: Some(id),
                data_dir: Some(dir.join(format!("n{id}"))),
                initial_cluster: Some(list.join(",")),
                request_timeout_ms: Some(request_timeout_ms),
                ..StationArgs::default()
            };
            let (config, _) = StationConfig::resolve(args).expect("a valid test configuration");
            members.push(Member { id, config, running: None });
        }
        Cluster { members, http: reqwest::Client::new(), dir }
    }

    /// Prepares member `id` (the next id) to join the running cluster
    /// (`--initial-cluster-state existing`), without starting it; returns
    /// its peer URL, for `member add`.
    pub fn prepare_joining(&mut self) -> String {
        let id = self.members.len() as u64 + 1;
        let free = free_addrs(2);
        let (peer, client) = (free[0], free[1]);
        let mut list: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={}={}", m.id, m.config.me().peer_addr, m.config.me().client_url))
            .collect();
        list.push(format!("{id}={peer}=http://{client}"));
        let args = StationArgs {
            id: Some(id),
            data_dir: Some(self.dir.join(format!("n{id}"))),
            initial_cluster: Some(list.join(",")),
            initial_cluster_state: Some(haven_daemon::ClusterState::Existing),
            request_timeout_ms: Some(3_000),
            ..StationArgs::default()
        };
        let (config, _) = StationConfig::resolve(args).expect("a valid joining configuration");
        self.members.push(Member { id, config, running: None });
        format!("http://{peer}")
    }

    /// Member ids and learner flags, as member `id` lists them.
    pub async fn member_list(&self, id: u64) -> Vec<(u64, bool)> {
        let (status, body) = self.post(id, "/v3/cluster/member/list", json!({})).await;
        if status != 200 {
            return Vec::new();
        }
        let members = body.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
        let entry = |m: &Value| {
            let id = m.get("ID").and_then(Value::as_str).and_then(|id| id.parse().ok()).unwrap_or(0);
            (id, m.get("isLearner").and_then(Value::as_bool).unwrap_or(false))
        };
        members.iter().map(entry).collect()
    }

    pub fn member(&mut self, id: u64) -> &mut Member {
        &mut self.members[usize::try_from(id - 1).unwrap()]
    }

    /// Starts member `id` (again), retrying while its old ports are released.
    pub fn launch(&mut self, id: u64) {
        let config = self.member(id).config.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel();
        runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let result = run_until(config, shutdown).await;
            let _ = finished.send(result);
        });
        self.member(id).running = Some(Running { runtime, stop, done });
    }

    /// Kills member `id` abruptly: its runtime is dropped with every task.
    pub fn crash(&mut self, id: u64) {
        if let Some(running) = self.member(id).running.take() {
            running.runtime.shutdown_background();
        }
    }

    /// Stops member `id` cleanly and returns how `run` ended.
    pub async fn stop(&mut self, id: u64) -> Result<(), DaemonError> {
        let running = self.member(id).running.take().expect("member running");
        let _ = running.stop.send(());
        let result = tokio::time::timeout(WAIT_MAX, running.done).await.expect("stops in time");
        running.runtime.shutdown_background();
        result.expect("run finished")
    }

    pub fn client_url(&self, id: u64) -> String {
        self.members[usize::try_from(id - 1).unwrap()].config.me().client_url.clone()
    }

    /// POSTs `body` to `path` on member `id`; the status and JSON answer.
    pub async fn post(&self, id: u64, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.client_url(id));
        match self.http.post(url).json(&body).timeout(WAIT_MAX).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "transport": e.to_string() })),
        }
    }

    pub async fn put(&self, id: u64, key: &str, value: &str) -> (u16, Value) {
        self.post(id, "/v3/kv/put", json!({ "key": B64.encode(key), "value": B64.encode(value) })).await
    }

    /// The value of `key` read through member `id`, `Err(status)` on failure.
    pub async fn get(&self, id: u64, key: &str, serializable: bool) -> Result<Option<String>, (u16, Value)> {
        let (status, body) =
            self.post(id, "/v3/kv/range", json!({ "key": B64.encode(key), "serializable": serializable })).await;
        if status != 200 {
            return Err((status, body));
        }
        let Some(kvs) = body.get("kvs").and_then(Value::as_array) else { return Ok(None) };
        let value = kvs.first().and_then(|kv| kv.get("value")).and_then(Value::as_str).unwrap_or("");
        Ok(Some(String::from_utf8(B64.decode(value).expect("base64")).expect("utf-8")))
    }

    /// The leader as member `id` reports it (0: none).
    pub async fn leader_seen_by(&self, id: u64) -> u64 {
        let (status, body) = self.post(id, "/v3/maintenance/status", json!({})).await;
        if status != 200 {
            return 0;
        }
        body.get("leader").and_then(Value::as_str).and_then(|l| l.parse().ok()).unwrap_or(0)
    }

    /// Waits until every member in `ids` reports the same leader; returns it.
    pub async fn wait_for_leader(&self, ids: &[u64]) -> u64 {
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for &id in ids {
                seen.push(self.leader_seen_by(id).await);
            }
            if seen[0] != 0 && seen.iter().all(|&l| l == seen[0]) {
                return seen[0];
            }
            assert!(start.elapsed() < WAIT_MAX, "no agreed leader among {ids:?}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The lowest-numbered member other than `leader`: a follower, once
    /// `leader` is the leader its members agree on.
    pub fn follower_of(&self, leader: u64) -> u64 {
        (1..=self.members.len() as u64).find(|&id| id != leader).expect("a member besides the leader")
    }

    pub async fn health(&self, id: u64) -> u16 {
        let url = format!("{}/health", self.client_url(id));
        self.http.get(url).timeout(WAIT_MAX).send().await.map_or(0, |r| r.status().as_u16())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(running) = member.running.take() {
                running.runtime.shutdown_background();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` until it holds or `WAIT_MAX` passes.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT_MAX, "not within {WAIT_MAX:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
