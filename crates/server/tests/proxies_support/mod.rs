//! Support for the proxy tests: agent and proxy processes (killed when
//! dropped), the nodes as the stations show them, and the stations' count
//! of requests from agents and proxies.

#![allow(dead_code)] // each test file uses its own part

use haven_client::{Client, ClientConfig, Retry};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const WAIT_MAX: Duration = Duration::from_secs(40);

/// A `haven agent` or `haven proxy` process; SIGKILLed, with the instances
/// an agent started, when dropped.
pub struct Proc {
    child: Option<Child>,
    pub dir: PathBuf,
}

impl Proc {
    fn spawn(dir: PathBuf, args: &[String]) -> Proc {
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haven starts");
        Proc { child: Some(child), dir }
    }

    /// `haven agent --node N`, through its proxy unless `direct`.
    pub fn agent(node: u64, dir: &Path, endpoints: &[String], direct: bool) -> Proc {
        let dir = dir.join(format!("agent{node}"));
        let mut args: Vec<String> =
            ["agent", "--node", &node.to_string(), "--endpoints", &endpoints.join(",")].map(String::from).to_vec();
        args.extend(["--lease-ttl-ms", "1000", "--poll-ms", "50", "--data-dir"].map(String::from));
        args.push(dir.display().to_string());
        if direct {
            args.push("--no-proxy".into());
        }
        Proc::spawn(dir, &args)
    }

    /// `haven proxy --id N` on a port of its choosing.
    pub fn proxy(id: u64, dir: &Path, endpoints: &[String]) -> Proc {
        let dir = dir.join(format!("proxy{id}"));
        let args = ["proxy", "--id", &id.to_string(), "--listen", "127.0.0.1:0", "--endpoints", &endpoints.join(",")]
            .map(String::from);
        Proc::spawn(dir, &args)
    }

    /// SIGSTOP (`true`) or SIGCONT: a frozen machine, then a thawed one.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("running");
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, if frozen { Signal::SIGSTOP } else { Signal::SIGCONT }).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// SIGTERM, a clean stop; waits for the process to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// SIGKILLs the process and, for an agent, its instances: the machine is gone.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
        for group in haven_server::ha_processes::instance_groups(&self.dir) {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.crash();
    }
}

pub fn client(endpoints: Vec<String>) -> Client {
    Client::new(ClientConfig { endpoints, request_timeout: Duration::from_secs(5), ..ClientConfig::default() }).unwrap()
}

/// `/v1/nodes` as JSON values.
pub async fn nodes(client: &Client) -> Vec<serde_json::Value> {
    let nodes: Result<serde_json::Value, _> =
        client.call_v1(reqwest::Method::GET, "/v1/nodes", None, Retry::Repeatable).await;
    nodes.ok().and_then(|n| n["nodes"].as_array().cloned()).unwrap_or_default()
}

/// Node `id`'s proxy, if it is alive.
pub fn proxy_of(nodes: &[serde_json::Value], id: u64) -> Option<u64> {
    let node = nodes.iter().find(|n| n["id"] == id)?;
    (node["lease"]["state"] == "alive").then(|| node["proxy"].as_u64())?
}

pub fn alive(nodes: &[serde_json::Value], id: u64) -> bool {
    nodes.iter().any(|n| n["id"] == id && n["lease"]["state"] == "alive")
}

/// Waits until `done` holds of the nodes, or fails naming `what`.
pub async fn wait_nodes(client: &Client, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        let nodes = nodes(client).await;
        if done(&nodes) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT_MAX:?}; nodes: {nodes:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests station `endpoint` took from agents and from proxies.
pub async fn load(endpoint: &str) -> (u64, u64) {
    let url = format!("{endpoint}/haven/v1/agent-load");
    let load: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    (load["agent_requests"].as_u64().unwrap(), load["proxy_requests"].as_u64().unwrap())
}

/// Whether the stations still hold lease `id`.
pub async fn lease_held(client: &Client, id: i64) -> bool {
    let body = serde_json::json!({ "ID": id.to_string() });
    let answer: Result<serde_json::Value, _> = client
        .call_v1(reqwest::Method::POST, "/v3/lease/timetolive", Some(&body), haven_client::Retry::Repeatable)
        .await;
    // etcd's JSON leaves a zero out; a lease it does not hold has TTL -1.
    let ttl = answer.expect("timetolive")["TTL"].as_str().map_or(Ok(0), str::parse::<i64>);
    ttl.expect("TTL is a number") >= 0
}
