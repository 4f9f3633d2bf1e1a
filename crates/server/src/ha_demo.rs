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

use crate::ha_cluster::{self, HaCluster, NODES, STEP_TIMEOUT, agent_default};
use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

struct Narrator {
    start: Instant,
}

impl Narrator {
    fn say(&self, text: &str) {
        println!("[{:>7.3}s] {text}", self.start.elapsed().as_secs_f64());
    }
}

pub fn run(binary: &Path, dir: &Path) -> Result<()> {
    ha_cluster::run(binary, dir, async |cluster: &mut HaCluster| demo(cluster).await)
}

async fn demo(cluster: &mut HaCluster) -> Result<()> {
    let narrator = Narrator { start: Instant::now() };
    cluster.wait("station leader", || async { cluster.get("/v1/nodes").await.is_some() }).await?;
    narrator.say(&format!("3 stations up: {}", cluster.endpoints().join(" ")));
    for node in 1..=NODES {
        cluster.start_agent(node)?;
    }
    let all_alive = || async { cluster.nodes_in("alive").await.len() == 4 };
    cluster.wait("join of the 4 agents", all_alive).await?;
    let ttl = agent_default("lease_ttl_ms").unwrap_or_else(|| "?".to_owned());
    narrator.say(&format!("4 agents joined (nodes 1-4), each with a {ttl} ms lease"));

    let queued = cluster.apply_web().await?;
    narrator.say(&format!("applied service web: singleton, 2 standbys (event {})", queued["event_id"]));
    cluster.wait("answer from web", || async { cluster.primary(None).await.is_some() }).await?;
    cluster.wait("2 ready standbys", || async { cluster.ready_standbys().await == 2 }).await?;
    let (serving, answer) = cluster.primary(None).await.context("web stopped answering")?;
    narrator.say(&format!("web answers on node {serving} ({}); standbys ready", answer.body));
    print_instances(cluster).await;

    cluster.crash(serving)?;
    let crashed = Instant::now();
    narrator.say(&format!("CRASH: node {serving} (its agent and the web instance, SIGKILL)"));
    timeline(cluster, serving, crashed).await?;
    print_instances(cluster).await;
    Ok(())
}

async fn print_instances(cluster: &HaCluster) {
    let Some(value) = cluster.get("/v1/instances?service=web").await else { return };
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

/// Watches the failover and prints each milestone once, with ms since the crash.
async fn timeline(cluster: &HaCluster, crashed_node: u64, crashed: Instant) -> Result<()> {
    let ms = || crashed.elapsed().as_millis();
    let (mut expired, mut decided, mut active) = (false, false, false);
    let deadline = crashed + STEP_TIMEOUT;
    loop {
        if !expired && cluster.nodes_in("expired").await.contains(&crashed_node) {
            expired = true;
            println!("    +{:>5} ms  node {crashed_node}'s lease expired at the stations: it is dead", ms());
        }
        let primary_now = new_primary(cluster, crashed_node).await;
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
        if let Some((node, answer)) = cluster.primary(Some(crashed_node)).await {
            // The steps can all land between two looks: those not seen yet
            // happened by now, and are shown so.
            if !expired {
                println!("   ≤+{:>5} ms  node {crashed_node}'s lease expired at the stations: it is dead", ms());
            }
            if !decided {
                println!("   ≤+{:>5} ms  decision committed: web's primary is now node {node}", ms());
            }
            println!("    +{:>5} ms  web answers again on node {node}: {}", ms(), answer.body);
            return if active { Ok(()) } else { reported_active(cluster, crashed_node, crashed).await };
        }
        if Instant::now() > deadline {
            bail!("web did not come back within {STEP_TIMEOUT:?} of the crash");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The new primary answers before its agent's report reaches the stations:
/// waits (as long as the failover may take) for that report, so the table
/// that follows shows where the cluster settled.
async fn reported_active(cluster: &HaCluster, crashed_node: u64, crashed: Instant) -> Result<()> {
    let deadline = crashed + STEP_TIMEOUT;
    loop {
        if let Some((node, _, state)) = new_primary(cluster, crashed_node).await
            && state == "active"
        {
            println!("    +{:>5} ms  node {node} reports web active", crashed.elapsed().as_millis());
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("web's new primary answered but was not reported active within {STEP_TIMEOUT:?} of the crash");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// web's primary on another node than `crashed`: (node, token, state).
async fn new_primary(cluster: &HaCluster, crashed: u64) -> Option<(u64, u64, String)> {
    let list = cluster.get("/v1/instances?service=web").await?["instances"].as_array().cloned()?;
    // The live primary with the greatest token: a primary that ended (say
    // fenced when its node lost its lease too) stays listed with its end.
    let live = |i: &&Value| !matches!(i["state"].as_str(), Some("fenced" | "failed"));
    let primaries = list.iter().filter(|i| i["role"] == "primary" && i["node"].as_u64() != Some(crashed));
    let newest = primaries.filter(live).max_by_key(|i| i["token"].as_u64())?;
    Some((newest["node"].as_u64()?, newest["token"].as_u64()?, newest["state"].as_str()?.to_owned()))
}
