//! `haven demo`: high availability end to end on this machine, narrated.
//!
//! In: the path of this binary and a scratch directory. Out: on stdout, a
//! run of real processes — 3 stations, 4 agents (nodes 1 to 4), and a
//! singleton `web` (the small HTTP server of `haven demo-service`, which
//! answers with its node and fencing token) with two standbys; the status
//! table; then a machine crash (the agent of the node serving `web` and
//! its instance, SIGKILLed together) and the timeline of the failover in
//! milliseconds: lease expired, decision committed, new primary active,
//! HTTP answering again. Everything is stopped at the end; the exit status
//! is non-zero if a step misses its bound or a process is left behind.

use crate::agent::supervisor::group_alive;
use crate::demo_service::promote_script;
use anyhow::{Context as _, Result, bail};
use haven_client::{Client, ClientConfig, Retry};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STATIONS: u64 = 3;
const NODES: u64 = 4;
const LEASE_TTL_MS: u64 = 1_000;
/// Any one step (a leader, the joins, the placement, the failover).
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The processes the demo started; all stopped when dropped.
struct Processes {
    children: Vec<(String, Child)>,
    agent_dirs: Vec<PathBuf>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Processes {
    fn spawn(&mut self, name: &str, binary: &Path, args: &[String], log: &Path) -> Result<()> {
        let log = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    fn pid(&self, name: &str) -> Option<Pid> {
        let (_, child) = self.children.iter().find(|(n, _)| n == name)?;
        Some(Pid::from_raw(i32::try_from(child.id()).ok()?))
    }

    /// SIGTERM to everyone (agents first: they kill their instances), then
    /// SIGKILL to whoever is still there after the grace period.
    fn stop(&mut self) {
        for (_, child) in self.children.iter().rev() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (_, child) in &mut self.children {
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        for dir in &self.agent_dirs {
            for pgid in instance_groups(dir) {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        }
    }
}

/// The process groups of the instances an agent runs (its `instances.pids`).
fn instance_groups(agent_dir: &Path) -> Vec<Pid> {
    let text = std::fs::read_to_string(agent_dir.join("instances.pids")).unwrap_or_default();
    text.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<i32>().ok()).map(Pid::from_raw).collect()
}

fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

struct Narrator {
    start: Instant,
}

impl Narrator {
    fn say(&self, text: &str) {
        println!("[{:>7.3}s] {text}", self.start.elapsed().as_secs_f64());
    }
}

pub fn run(binary: &Path, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut processes = Processes { children: Vec::new(), agent_dirs: Vec::new() };
    let result = runtime.block_on(demo(binary, dir, &mut processes));
    processes.stop();
    let leftovers: Vec<Pid> = processes.agent_dirs.iter().flat_map(|d| instance_groups(d)).collect();
    let alive = leftovers.iter().filter(|pgid| group_alive(**pgid)).count();
    result?;
    println!("stopped every station, agent and instance ({alive} process groups left)");
    if alive > 0 {
        bail!("{alive} instance process groups outlived the demo");
    }
    Ok(())
}

async fn demo(binary: &Path, dir: &Path, processes: &mut Processes) -> Result<()> {
    let narrator = Narrator { start: Instant::now() };
    let endpoints = start_stations(binary, dir, processes)?;
    let config =
        ClientConfig { endpoints: endpoints.clone(), request_timeout: Duration::from_secs(2), ..Default::default() };
    let client = Client::new(config)?;
    wait(&narrator, "a station leader", || async { get(&client, "/v1/nodes").await.is_some() }).await?;
    narrator.say(&format!("3 stations up: {}", endpoints.join(" ")));

    for node in 1..=NODES {
        let agent_dir = dir.join(format!("agent{node}"));
        std::fs::create_dir_all(&agent_dir)?;
        let args: Vec<String> = [
            "agent",
            "--node",
            &node.to_string(),
            "--endpoints",
            &endpoints.join(","),
            "--lease-ttl-ms",
            &LEASE_TTL_MS.to_string(),
            "--poll-ms",
            "50",
            "--data-dir",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([agent_dir.display().to_string()])
        .collect();
        processes.spawn(&format!("agent{node}"), binary, &args, &agent_dir.join("agent.log"))?;
        processes.agent_dirs.push(agent_dir);
    }
    wait(&narrator, "4 agents to join", || async { count(get(&client, "/v1/nodes").await, "nodes") == 4 }).await?;
    narrator.say(&format!("4 agents joined (nodes 1-4), each with a {LEASE_TTL_MS} ms lease"));

    let port_base = free_addr()?.port().saturating_sub(10);
    let script = dir.join("promote.sh");
    std::fs::write(&script, promote_script(dir))?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let service = json!({
        "name": "web",
        "command": binary.display().to_string(),
        "args": ["demo-service", "--dir", dir.display().to_string(), "--port-base", port_base.to_string()],
        "kind": "singleton",
        "standbys": 2,
        "promote": script.display().to_string(),
        "placement": { "preferred": [1, 2, 3, 4] },
    });
    let queued: Value =
        client.call_v1(reqwest::Method::POST, "/v1/services", Some(&service), Retry::NotRepeatable).await?;
    narrator.say(&format!("applied service web: singleton, 2 standbys (event {})", queued["event_id"]));
    let serving = wait_for_primary(&narrator, port_base, None).await?;
    wait(&narrator, "2 ready standbys", || async { ready_standbys(&client).await == 2 }).await?;
    narrator.say(&format!("web answers on node {} ({}); standbys ready", serving.0, serving.1.trim()));
    print_instances(&client).await;

    crash(processes, serving.0)?;
    let crashed = Instant::now();
    narrator.say(&format!("CRASH: node {} (its agent and the web instance, SIGKILL)", serving.0));
    timeline(&client, port_base, serving.0, crashed).await?;
    print_instances(&client).await;
    Ok(())
}

fn start_stations(binary: &Path, dir: &Path, processes: &mut Processes) -> Result<Vec<String>> {
    let addrs: Vec<(SocketAddr, SocketAddr)> =
        (0..STATIONS).map(|_| Ok((free_addr()?, free_addr()?))).collect::<Result<_>>()?;
    let list: Vec<String> =
        addrs.iter().enumerate().map(|(i, (peer, client))| format!("{}={peer}=http://{client}", i + 1)).collect();
    for id in 1..=STATIONS {
        let data = dir.join(format!("station{id}"));
        let args: Vec<String> =
            ["station", "--id", &id.to_string(), "--initial-cluster", &list.join(","), "--data-dir"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain([data.display().to_string()])
                .collect();
        processes.spawn(&format!("station{id}"), binary, &args, &dir.join(format!("station{id}.log")))?;
    }
    Ok(addrs.iter().map(|(_, client)| format!("http://{client}")).collect())
}

async fn get(client: &Client, path: &str) -> Option<Value> {
    client.call_v1(reqwest::Method::GET, path, None, Retry::Repeatable).await.ok()
}

fn count(value: Option<Value>, field: &str) -> usize {
    value.and_then(|v| v[field].as_array().map(Vec::len)).unwrap_or(0)
}

async fn wait<F: Future<Output = bool>>(narrator: &Narrator, what: &str, mut done: impl FnMut() -> F) -> Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !done().await {
        if Instant::now() > deadline {
            narrator.say(&format!("gave up waiting for {what}"));
            bail!("no {what} within {STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `(status, body)` of web on `node`, if it answers.
async fn web(port_base: u16, node: u64) -> Option<(u16, String)> {
    let port = port_base.checked_add(u16::try_from(node).ok()?)?;
    let mut stream =
        tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(("127.0.0.1", port)))
            .await
            .ok()?
            .ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_millis(200), stream.read_to_string(&mut answer)).await.ok()?.ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()))
}

/// The node whose web answers 200 (not `except`), and its answer.
async fn primary(port_base: u16, except: Option<u64>) -> Option<(u64, String)> {
    for node in (1..=NODES).filter(|n| Some(*n) != except) {
        if let Some((200, body)) = web(port_base, node).await {
            return Some((node, body));
        }
    }
    None
}

async fn wait_for_primary(narrator: &Narrator, port_base: u16, except: Option<u64>) -> Result<(u64, String)> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(found) = primary(port_base, except).await {
            return Ok(found);
        }
        if Instant::now() > deadline {
            narrator.say("gave up waiting for web to answer");
            bail!("web did not answer within {STEP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ready_standbys(client: &Client) -> usize {
    let instances = get(client, "/v1/instances?service=web").await;
    let list = instances.and_then(|v| v["instances"].as_array().cloned()).unwrap_or_default();
    list.iter().filter(|i| i["role"] == "standby" && i["state"] == "active").count()
}

async fn print_instances(client: &Client) {
    let Some(value) = get(client, "/v1/instances?service=web").await else { return };
    println!("    INSTANCE  NODE  ROLE      STATE     TOKEN");
    for i in value["instances"].as_array().cloned().unwrap_or_default() {
        let token = i["token"].as_u64().map_or("-".to_owned(), |t| t.to_string());
        println!(
            "    {:<9} {:<5} {:<9} {:<9} {token}",
            i["id"].to_string(),
            i["node"].to_string(),
            i["role"].as_str().unwrap_or("?"),
            i["state"].as_str().unwrap_or("?")
        );
    }
}

fn crash(processes: &mut Processes, node: u64) -> Result<()> {
    let name = format!("agent{node}");
    let pid = processes.pid(&name).context("the agent of the serving node")?;
    let groups = instance_groups(&processes.agent_dirs[usize::try_from(node - 1)?]);
    kill(pid, Signal::SIGKILL)?;
    for pgid in groups {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    Ok(())
}

/// Watches the failover and prints each milestone once, with ms since the crash.
async fn timeline(client: &Client, port_base: u16, crashed_node: u64, crashed: Instant) -> Result<()> {
    let ms = || crashed.elapsed().as_millis();
    let (mut expired, mut decided, mut active) = (false, false, false);
    let deadline = crashed + STEP_TIMEOUT;
    loop {
        if !expired && node_expired(client, crashed_node).await {
            expired = true;
            println!("    +{:>5} ms  node {crashed_node}'s lease expired at the stations: it is dead", ms());
        }
        let primary_now = new_primary(client, crashed_node).await;
        if !decided && let Some((node, token, _)) = &primary_now {
            decided = true;
            println!(
                "    +{:>5} ms  decision committed: web's primary is now node {node}, fencing token {token}",
                ms()
            );
        }
        if !active && let Some((node, _, "active")) = primary_now.as_ref().map(|(n, t, s)| (*n, *t, s.as_str())) {
            active = true;
            println!("    +{:>5} ms  node {node} reports web active", ms());
        }
        if let Some((node, body)) = primary(port_base, Some(crashed_node)).await {
            println!("    +{:>5} ms  web answers again on node {node}: {}", ms(), body.trim());
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("web did not come back within {STEP_TIMEOUT:?} of the crash");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn node_expired(client: &Client, node: u64) -> bool {
    let nodes = get(client, "/v1/nodes").await.and_then(|v| v["nodes"].as_array().cloned()).unwrap_or_default();
    nodes.iter().any(|n| n["id"].as_u64() == Some(node) && n["lease"]["state"] == "expired")
}

/// web's primary on another node than `crashed`: (node, token, state).
async fn new_primary(client: &Client, crashed: u64) -> Option<(u64, u64, String)> {
    let list = get(client, "/v1/instances?service=web").await?["instances"].as_array().cloned()?;
    list.iter().find_map(|i| {
        let node = i["node"].as_u64()?;
        let primary = i["role"] == "primary" && node != crashed;
        primary.then(|| Some((node, i["token"].as_u64()?, i["state"].as_str()?.to_owned())))?
    })
}
