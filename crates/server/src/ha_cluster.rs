//! A high-availability cluster of real processes on loopback, with the
//! sample singleton `web`: what `haven demo` and `haven bench failover-ha`
//! both run.
//!
//! In: the path of this binary and a scratch directory. Out: 3 stations,
//! 4 agents (nodes 1 to 4, with `haven agent`'s default settings), the
//! service `web` (the HTTP server of `haven demo-service`) as a singleton
//! with two standbys, probes of its HTTP answers and of the stations' view,
//! and the faults a machine can suffer (crash, freeze). [`run`] wraps a
//! body using the cluster so that every process is stopped whatever the
//! body does — returns, fails, or is interrupted by Ctrl-C or SIGTERM —
//! and fails if an instance's process group outlived it.

use crate::agent_cmd::AgentArgs;
use crate::demo_service::promote_script;
use crate::ha_processes::Processes;
use anyhow::{Context as _, Result, anyhow, bail};
use haven_client::{Client, ClientConfig, Retry};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const STATIONS: u64 = 3;
pub const NODES: u64 = 4;
/// The standbys `web` keeps besides its primary.
pub const STANDBYS: usize = 2;
/// Any one step (a leader, the joins, the placement, a failover).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// One HTTP probe of `web`: a frozen instance accepts but never answers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Bytes of an answer read; `web` answers with a few dozen.
const ANSWER_BYTES_MAX: u64 = 4_096;
/// Between two looks at a condition in [`HaCluster::wait`].
const WAIT_POLL: Duration = Duration::from_millis(20);

/// What `web` on one node answered: an HTTP status and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebAnswer {
    pub status: u16,
    pub body: String,
}

impl WebAnswer {
    /// The fencing token a primary names (`node N token T`), if it is one.
    pub fn token(&self) -> Option<u64> {
        let token = self.body.split_whitespace().skip_while(|w| *w != "token").nth(1)?;
        (self.status == 200).then(|| token.parse().ok())?
    }
}

/// The stations, agents and `web` of one local cluster.
#[derive(Debug)]
pub struct HaCluster {
    binary: PathBuf,
    dir: PathBuf,
    endpoints: Vec<String>,
    client: Client,
    processes: Processes,
    port_base: u16,
}

/// Starts a cluster in a fresh `dir`, runs `body` on it, and stops every
/// process however `body` ends (Ctrl-C and SIGTERM included).
pub fn run<T>(binary: &Path, dir: &Path, body: impl AsyncFnOnce(&mut HaCluster) -> Result<T>) -> Result<T> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {} (give another --dir?)", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let mut cluster = HaCluster::start_stations(binary, dir)?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = body(&mut cluster) => result,
            () = haven_daemon::shutdown_signal() => Err(anyhow!("interrupted; every process was stopped")),
        }
    });
    cluster.processes.stop();
    let alive = cluster.processes.groups_alive();
    let leftovers = format!("{alive} instance process groups outlived the run: `ps -eo pgid,cmd | grep demo-service`");
    if alive > 0 && result.is_err() {
        eprintln!("warning: {leftovers}");
    }
    let value = result?;
    println!("stopped every station, agent and instance ({alive} process groups left)");
    if alive > 0 {
        bail!(leftovers);
    }
    Ok(value)
}

/// What an HTTP server on loopback `port` answers to `GET /`, if it
/// answers within [`PROBE_TIMEOUT`] (twice: to connect, then to answer).
pub async fn probe(port: u16) -> Option<WebAnswer> {
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    let mut stream = tokio::time::timeout(PROBE_TIMEOUT, connect).await.ok()?.ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut answer = String::new();
    let mut limited = stream.take(ANSWER_BYTES_MAX);
    tokio::time::timeout(PROBE_TIMEOUT, limited.read_to_string(&mut answer)).await.ok()?.ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some(WebAnswer { status, body: answer.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_owned() })
}

pub fn free_addr() -> Result<SocketAddr> {
    Ok(haven_net::loopback_listener().context("binding a free loopback port")?.local_addr()?)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A default of `haven agent`'s flag `id` (its field name), as it parses it.
pub fn agent_default(id: &str) -> Option<String> {
    let command = <AgentArgs as clap::Args>::augment_args(clap::Command::new("agent"));
    let arg = command.get_arguments().find(|a| a.get_id() == id)?;
    Some(arg.get_default_values().first()?.to_string_lossy().into_owned())
}

impl HaCluster {
    fn start_stations(binary: &Path, dir: &Path) -> Result<HaCluster> {
        let addrs: Vec<(SocketAddr, SocketAddr)> =
            (0..STATIONS).map(|_| Ok((free_addr()?, free_addr()?))).collect::<Result<_>>()?;
        let list: Vec<String> =
            addrs.iter().enumerate().map(|(i, (peer, client))| format!("{}={peer}=http://{client}", i + 1)).collect();
        let mut processes = Processes::default();
        for id in 1..=STATIONS {
            let mut args = strings(&["station", "--id", &id.to_string(), "--initial-cluster", &list.join(",")]);
            args.extend(["--data-dir".to_owned(), dir.join(format!("station{id}")).display().to_string()]);
            processes.spawn(&format!("station{id}"), binary, &args, &dir.join(format!("station{id}.log")))?;
        }
        let endpoints: Vec<String> = addrs.iter().map(|(_, client)| format!("http://{client}")).collect();
        let config = ClientConfig {
            endpoints: endpoints.clone(),
            request_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let client = Client::new(config).context("a client of the stations")?;
        // web on node n listens on port_base + n (n = 1..=NODES): the next
        // NODES ports of this process's sequence, which it then skips.
        let port_base = free_addr()?.port() - 1;
        for _ in 1..NODES {
            free_addr()?;
        }
        Ok(HaCluster { binary: binary.to_owned(), dir: dir.to_owned(), endpoints, client, processes, port_base })
    }

    /// Where the stations' and agents' data and logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn agent_dir(&self, node: u64) -> PathBuf {
        self.dir.join(format!("agent{node}"))
    }

    /// Where the agent of `node` logs (its instances' logs are beside it).
    pub fn agent_log(&self, node: u64) -> PathBuf {
        self.agent_dir(node).join("agent.log")
    }

    /// The process groups of the instances the agent of `node` runs.
    pub fn instance_groups(&self, node: u64) -> Vec<nix::unistd::Pid> {
        self.processes.instance_groups(node)
    }

    /// Starts (or starts again) the agent of `node` with `haven agent`'s defaults.
    pub fn start_agent(&mut self, node: u64) -> Result<()> {
        let dir = self.agent_dir(node);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut args = strings(&["agent", "--node", &node.to_string(), "--endpoints", &self.endpoints.join(",")]);
        args.extend(["--data-dir".to_owned(), dir.display().to_string()]);
        self.processes.spawn(&format!("agent{node}"), &self.binary, &args, &self.agent_log(node))?;
        self.processes.add_agent_dir(node, dir);
        Ok(())
    }

    /// Applies `web`: a singleton preferring nodes 1 to 4, with standbys
    /// promoted by a script that tells the waiting server its token.
    pub async fn apply_web(&self) -> Result<Value> {
        let script = self.dir.join("promote.sh");
        std::fs::write(&script, promote_script(&self.dir))?;
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let service = json!({
            "name": "web",
            "command": self.binary.display().to_string(),
            "args": ["demo-service", "--dir", self.dir.display().to_string(), "--port-base", self.port_base.to_string()],
            "kind": "singleton",
            "standbys": STANDBYS,
            "promote": script.display().to_string(),
            "placement": { "preferred": (1..=NODES).collect::<Vec<u64>>() },
        });
        let queued = self.client.call_v1(reqwest::Method::POST, "/v1/services", Some(&service), Retry::NotRepeatable);
        queued.await.context("applying the service web")
    }

    /// A GET of Haven's `/v1/` API; `None` while no station answers.
    pub async fn get(&self, path: &str) -> Option<Value> {
        self.client.call_v1(reqwest::Method::GET, path, None, Retry::Repeatable).await.ok()
    }

    /// Polls `done` until it holds; fails after [`STEP_TIMEOUT`] naming `what`.
    pub async fn wait<F: Future<Output = bool>>(&self, what: &str, mut done: impl FnMut() -> F) -> Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while !done().await {
            if Instant::now() > deadline {
                bail!("no {what} within {STEP_TIMEOUT:?}; the logs are in {}", self.dir.display());
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        Ok(())
    }

    /// What `web` on `node` answers, if it answers.
    pub async fn web(&self, node: u64) -> Option<WebAnswer> {
        probe(self.port_base.checked_add(u16::try_from(node).ok()?)?).await
    }

    /// The node (not `except`) whose `web` answers as the primary, and its answer.
    pub async fn primary(&self, except: Option<u64>) -> Option<(u64, WebAnswer)> {
        for node in (1..=NODES).filter(|n| Some(*n) != except) {
            if let Some(answer) = self.web(node).await.filter(|a| a.status == 200) {
                return Some((node, answer));
            }
        }
        None
    }

    /// Standbys of `web` the stations see active.
    pub async fn ready_standbys(&self) -> usize {
        let instances = self.get("/v1/instances?service=web").await;
        let list = instances.and_then(|v| v["instances"].as_array().cloned()).unwrap_or_default();
        list.iter().filter(|i| i["role"] == "standby" && i["state"] == "active").count()
    }

    /// The nodes whose lease is in `state` ("alive" or "expired").
    pub async fn nodes_in(&self, state: &str) -> Vec<u64> {
        let nodes = self.get("/v1/nodes").await.and_then(|v| v["nodes"].as_array().cloned()).unwrap_or_default();
        nodes.iter().filter(|n| n["lease"]["state"] == state).filter_map(|n| n["id"].as_u64()).collect()
    }

    /// A machine crash: SIGKILL to the agent of `node` and to its instances.
    pub fn crash(&mut self, node: u64) -> Result<()> {
        let groups = self.processes.instance_groups(node);
        self.processes.kill(&format!("agent{node}"))?;
        for pgid in groups {
            let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
        }
        Ok(())
    }

    /// A frozen machine: SIGSTOP to the agent of `node`, then its instances.
    pub fn freeze(&self, node: u64) -> Result<()> {
        self.processes.signal(&format!("agent{node}"), Signal::SIGSTOP)?;
        self.processes.signal_instances(node, Signal::SIGSTOP);
        Ok(())
    }

    /// The frozen machine runs again: SIGCONT to its agent and instances.
    pub fn thaw(&self, node: u64) -> Result<()> {
        self.processes.signal(&format!("agent{node}"), Signal::SIGCONT)?;
        self.processes.signal_instances(node, Signal::SIGCONT);
        Ok(())
    }
}
