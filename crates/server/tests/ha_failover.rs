//! Real processes end to end: three `haven station`s, two `haven agent`s
//! (nodes 4 and 5), and a singleton service preferring node 4 whose
//! instance writes its node and fencing token to a file. A machine crash —
//! the agent of node 4 and the instance it runs, both SIGKILLed — must be
//! followed by the service running on node 5 with a greater token, once
//! node 4's lease has expired at the stations. Prints the time from the
//! crash to the replacement writing its token.

mod common;

use common::cluster::Cluster;
use haven_client::{Client, ClientConfig, Retry};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT_MAX: Duration = Duration::from_secs(40);
const LEASE_TTL_MS: u64 = 1_000;

/// An agent process; killed, with every instance it started, when dropped.
struct Agent {
    child: Option<Child>,
    dir: PathBuf,
}

impl Agent {
    fn start(node: u64, dir: &Path, endpoints: &[String]) -> Agent {
        let dir = dir.join(format!("agent{node}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["agent", "--node", &node.to_string(), "--endpoints", &endpoints.join(",")])
            .args(["--lease-ttl-ms", &LEASE_TTL_MS.to_string(), "--poll-ms", "50"])
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haven agent starts");
        Agent { child: Some(child), dir }
    }

    /// SIGKILLs the agent and its instances: the machine is gone.
    fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let pids = std::fs::read_to_string(self.dir.join("instances.pids")).unwrap_or_default();
        for pgid in pids.lines().filter_map(|l| l.split_whitespace().nth(1)?.parse::<i32>().ok()) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.crash();
    }
}

/// The token the instance on `node` wrote, once it has.
fn token(dir: &Path, node: u64) -> Option<u64> {
    std::fs::read_to_string(dir.join(format!("token-{node}"))).ok()?.trim().parse().ok()
}

async fn wait_for_token(dir: &Path, node: u64, what: &str) -> (u64, Instant) {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some(token) = token(dir, node) {
            return (token, Instant::now());
        }
        assert!(Instant::now() < deadline, "{what}: no token from node {node} within {WAIT_MAX:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_machines_singleton_moves_with_a_greater_token_after_its_lease_expires() {
    let dir = std::env::temp_dir().join(format!("haven-ha-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::new(&dir, 3, &[]);
    cluster.start_all();
    cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    let endpoints = cluster.endpoints(1);
    let mut four = Agent::start(4, &dir, &endpoints);
    let _five = Agent::start(5, &dir, &endpoints);

    let script = format!("echo $HAVEN_FENCING_TOKEN > {}/token-$HAVEN_NODE; exec sleep 600", dir.display());
    let service = serde_json::json!({
        "name": "web",
        "command": "/bin/sh",
        "args": ["-c", script],
        "kind": "singleton",
        "placement": { "preferred": [4, 5] },
    });
    let config = ClientConfig { endpoints, request_timeout: Duration::from_secs(5), ..ClientConfig::default() };
    let client = Client::new(config).unwrap();
    let deadline = Instant::now() + WAIT_MAX;
    // Both agents join first: placed while only n5 lives, web would stay there.
    loop {
        let nodes: Result<serde_json::Value, _> =
            client.call_v1(reqwest::Method::GET, "/v1/nodes", None, Retry::Repeatable).await;
        let joined = nodes.ok().and_then(|n| n["nodes"].as_array().map(Vec::len)).unwrap_or(0);
        if joined == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the two agents join");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let added: Result<serde_json::Value, _> =
        client.call_v1(reqwest::Method::POST, "/v1/services", Some(&service), Retry::NotRepeatable).await;
    added.expect("the service is queued");
    let (first, _) = wait_for_token(&dir, 4, "first placement").await;
    assert!(Instant::now() < deadline);

    four.crash();
    let crashed = Instant::now();
    let (second, moved) = wait_for_token(&dir, 5, "failover").await;
    let took = moved - crashed;
    println!(
        "ha failover: token {first} on node 4 → token {second} on node 5, {} ms after the crash",
        took.as_millis()
    );
    assert!(second > first, "the replacement's fencing token {second} is above the old one {first}");
    assert!(
        took >= Duration::from_millis(LEASE_TTL_MS / 2),
        "moved {took:?} after the crash: before node 4's lease could have expired"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
