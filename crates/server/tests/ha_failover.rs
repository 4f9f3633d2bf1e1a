//! Real processes end to end: three `haven station`s, two `haven agent`s
//! (nodes 4 and 5), and a singleton service preferring node 4 whose
//! instance writes its node and fencing token to a file.
//!
//! - A machine crash — the agent of node 4 and the instance it runs, both
//!   SIGKILLed — must be followed by the service running on node 5 with a
//!   greater token, once node 4's lease has expired at the stations.
//! - A frozen machine (SIGSTOP of both) with a fence command configured:
//!   the leader runs the command for node 4 once it has been silent for
//!   `--fence-after-ms`, the command kills node 4's processes (as a power
//!   switch would), and the service moves on the confirmed fence, before
//!   node 4's lease could have expired, with node 4's instance gone.
//! - Node 4's agent stopped cleanly (SIGTERM): it kills web and revokes its
//!   lease before it exits, and web moves to node 5.
//! - The station leader crashed (SIGKILL) or frozen (SIGSTOP): a new leader
//!   is elected and the agents renew with it before their fence deadline,
//!   so web keeps running on node 4 with its token and nothing moves.
//!
//! The first two print the time from the fault to the replacement writing
//! its token.

mod common;

use common::cluster::Cluster;
use haven_client::{Client, ClientConfig, Retry};
use haven_server::agent::supervisor::group_alive;
use haven_server::ha_processes::instance_groups;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT_MAX: Duration = Duration::from_secs(40);
/// `haven agent`'s default.
const LEASE_TTL_MS: u64 = 900;

/// An agent process; killed, with every instance it started, when dropped.
struct Agent {
    child: Option<Child>,
    dir: PathBuf,
}

impl Agent {
    fn start(node: u64, dir: &Path, endpoints: &[String], lease_ttl_ms: u64) -> Agent {
        let dir = dir.join(format!("agent{node}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["agent", "--node", &node.to_string(), "--endpoints", &endpoints.join(",")])
            .args(["--lease-ttl-ms", &lease_ttl_ms.to_string(), "--poll-ms", "50"])
            .arg("--data-dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haven agent starts");
        std::fs::write(dir.join("agent.pid"), child.id().to_string()).unwrap();
        Agent { child: Some(child), dir }
    }

    /// The process groups of the instances the agent started.
    fn instance_groups(&self) -> Vec<Pid> {
        instance_groups(&self.dir)
    }

    /// SIGSTOPs the agent and its instances: the machine hangs.
    fn freeze(&self) {
        if let Some(child) = &self.child {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGSTOP);
        }
        for group in self.instance_groups() {
            let _ = killpg(group, Signal::SIGSTOP);
        }
    }

    /// SIGTERMs the agent (a clean stop) and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// SIGKILLs the agent and its instances: the machine is gone.
    fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for group in self.instance_groups() {
            let _ = killpg(group, Signal::SIGKILL);
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

/// One cluster at a time: these tests measure what a fault costs, and five
/// clusters at once on a 2-core machine would stall each other for longer
/// than an election timeout.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, node 4 running `web` (the token it wrote), node 5 ready.
struct Running {
    _alone: tokio::sync::MutexGuard<'static, ()>,
    dir: PathBuf,
    cluster: Cluster,
    four: Agent,
    _five: Agent,
    client: Client,
    first: u64,
}

async fn start_web(name: &str, station_args: &[&str], lease_ttl_ms: u64) -> Running {
    let alone = ONE_CLUSTER.lock().await;
    let dir = std::env::temp_dir().join(format!("haven-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let station_args: Vec<String> =
        station_args.iter().map(|a| a.replace("{dir}", &dir.display().to_string())).collect();
    let station_args: Vec<&str> = station_args.iter().map(String::as_str).collect();
    let mut cluster = Cluster::new(&dir, 3, &station_args);
    cluster.start_all();
    cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    let endpoints = cluster.endpoints(1);
    let four = Agent::start(4, &dir, &endpoints, lease_ttl_ms);
    let five = Agent::start(5, &dir, &endpoints, lease_ttl_ms);

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
    Running { _alone: alone, dir, cluster, four, _five: five, client, first }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_machines_singleton_moves_with_a_greater_token_after_its_lease_expires() {
    let Running { _alone, dir, cluster, mut four, _five, client: _, first } =
        start_web("ha-failover", &[], LEASE_TTL_MS).await;
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

/// The fence command: kills the node's agent and instances (a power switch
/// would cut the machine), records its arguments, and exits 0 once done.
const FENCE_SCRIPT: &str = r#"#!/bin/sh
set -e
echo "$1 $2 $HAVEN_FENCE_NODE" >> DIR/fenced
for group in $(awk '{print $2}' DIR/agent$1/instances.pids); do kill -9 -$group; done
kill -9 $(cat DIR/agent$1/agent.pid)
"#;
/// A lease long enough that a move within it can only come from the fence;
/// the agents renew every third of it, and the fence waits for a silence
/// above two renewal intervals (as `--fence-after-ms` asks).
const FENCED_LEASE_TTL_MS: u64 = 3_000;
const FENCE_AFTER_MS: u64 = 2_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_machine_is_fenced_by_the_command_and_its_singleton_moves_before_its_lease_expires() {
    let fence = std::env::temp_dir().join(format!("haven-fence-{}.sh", std::process::id()));
    let after = FENCE_AFTER_MS.to_string();
    let args = ["--fence-command", fence.to_str().unwrap(), "--fence-after-ms", &after];
    let dir = std::env::temp_dir().join(format!("haven-ha-fence-{}", std::process::id()));
    std::fs::write(&fence, FENCE_SCRIPT.replace("DIR", &dir.display().to_string())).unwrap();
    std::fs::set_permissions(&fence, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let Running { _alone, dir, cluster, four, _five, client, first } =
        start_web("ha-fence", &args, FENCED_LEASE_TTL_MS).await;
    let groups = four.instance_groups();
    assert!(!groups.is_empty(), "node 4 runs web");
    four.freeze();
    let frozen = Instant::now();
    let (second, moved) = wait_for_token(&dir, 5, "failover").await;
    let took = moved - frozen;
    println!("ha fence: token {first} on node 4 → token {second} on node 5, {} ms after the freeze", took.as_millis());
    assert!(second > first, "the replacement's fencing token {second} is above the old one {first}");
    let fenced = std::fs::read_to_string(dir.join("fenced")).expect("the fence command ran");
    let first_call: Vec<&str> = fenced.lines().next().unwrap_or("").split_whitespace().collect();
    assert!(
        first_call.len() == 3 && first_call[0] == "4" && first_call[2] == "4" && first_call[1] == "127.0.0.1",
        "run as `<command> 4 <address>` with HAVEN_FENCE_NODE=4: {fenced:?}"
    );
    for group in groups {
        assert!(!group_alive(group), "node 4's instance group {group} was killed by the fence");
    }
    let events: serde_json::Value =
        client.call_v1(reqwest::Method::GET, "/v1/events", None, Retry::Repeatable).await.expect("events");
    let text = events.to_string();
    assert!(text.contains("n4 is dead: its fence was confirmed"), "the move cites the fence: {text}");
    assert!(!text.contains("n4 is dead: its lease expired"), "not the lease: {text}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&fence);
}

/// How long a station fault is watched: past four TTLs, any self-fence of
/// node 4 or a move of web would have happened.
const WATCHED: Duration = Duration::from_millis(LEASE_TTL_MS * 4);

/// Watches web on node 4 for [`WATCHED`] after a fault of the station
/// leader: its process group must live throughout, no replacement may
/// start on node 5, and no station may have declared node 4 dead.
async fn web_stays_on_node_4(running: &Running, what: &str) {
    let groups = running.four.instance_groups();
    assert!(!groups.is_empty(), "node 4 runs web");
    let until = Instant::now() + WATCHED;
    while Instant::now() < until {
        for group in &groups {
            assert!(group_alive(*group), "{what}: node 4's agent killed web (group {group}): it self-fenced");
        }
        assert!(token(&running.dir, 5).is_none(), "{what}: web was started on node 5");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(token(&running.dir, 4), Some(running.first), "{what}: web on node 4 kept its token");
    let events: serde_json::Value =
        running.client.call_v1(reqwest::Method::GET, "/v1/events", None, Retry::Repeatable).await.expect("events");
    let text = events.to_string();
    assert!(!text.contains("n4 is dead"), "{what}: node 4 was declared dead: {text}");
}

/// Safety comes from the lease, and availability must survive the stations'
/// own faults: a new leader is elected (election timeout 200 ms) well within
/// the agents' fence deadline (TTL − margin − drift ≈ 800 ms after their last
/// renewal), so agents renew with it and keep their singletons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_station_leader_moves_nothing_and_no_agent_self_fences() {
    let mut running = start_web("ha-leader-crash", &[], LEASE_TTL_MS).await;
    let leader = running.cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    running.cluster.kill(leader);
    web_stays_on_node_4(&running, &format!("station {leader} (the leader) SIGKILLed")).await;
    drop(running.cluster);
    let _ = std::fs::remove_dir_all(&running.dir);
}

/// The same with the leader frozen (SIGSTOP) for three TTLs: its agents'
/// requests hang until their attempt times out (TTL / 4), then go elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_station_leader_moves_nothing_and_no_agent_self_fences() {
    let mut running = start_web("ha-leader-freeze", &[], LEASE_TTL_MS).await;
    let leader = running.cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    running.cluster.pause(leader);
    web_stays_on_node_4(&running, &format!("station {leader} (the leader) SIGSTOPped")).await;
    running.cluster.resume(leader);
    drop(running.cluster);
    let _ = std::fs::remove_dir_all(&running.dir);
}

/// The ids of the leases the stations hold.
async fn leases(client: &Client) -> Vec<String> {
    let listed: serde_json::Value = client
        .call_v1(reqwest::Method::POST, "/v3/lease/leases", Some(&serde_json::json!({})), Retry::Repeatable)
        .await
        .expect("leases");
    let all = listed["leases"].as_array().cloned().unwrap_or_default();
    all.iter().filter_map(|l| l["ID"].as_str().map(str::to_owned)).collect()
}

/// An agent stopped cleanly kills its instances and then revokes its
/// lease: when it has exited its lease is already gone (it would otherwise
/// live up to a TTL longer), and its singleton moves with a greater token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanly_stopped_agent_revokes_its_lease_once_its_instances_are_gone_and_web_moves() {
    let mut running = start_web("ha-agent-stop", &[], LEASE_TTL_MS).await;
    let groups = running.four.instance_groups();
    assert_eq!(leases(&running.client).await.len(), 2, "nodes 4 and 5 hold a lease each");
    running.four.stop();
    for group in groups {
        assert!(!group_alive(group), "node 4's instance group {group} was killed before the agent exited");
    }
    assert_eq!(leases(&running.client).await.len(), 1, "node 4's lease was revoked before the agent exited");
    let (second, _) = wait_for_token(&running.dir, 5, "move after a clean stop").await;
    assert!(second > running.first, "the replacement's fencing token {second} is above {}", running.first);
    drop(running.cluster);
    let _ = std::fs::remove_dir_all(&running.dir);
}
