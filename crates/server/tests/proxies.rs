//! Real processes: three stations, two `haven proxy`s (nodes 10 and 11) and
//! three agents (nodes 4, 5, 6). The agents are assigned to the proxies and
//! keep their leases through them (the stations then hear from the proxies,
//! not from the agents); a singleton fails over when its machine crashes;
//! and when a proxy is killed its agents keep their leases (no new session,
//! the service on them untouched) and move to the other proxy; when that
//! one freezes (SIGSTOP), they keep their leases through the stations;
//! woken, it joins again, and stopped cleanly (SIGTERM) it revokes its
//! lease before it exits.

mod common;
mod proxies_support;

use common::cluster::Cluster;
use haven_client::Retry;
use proxies_support::{Proc, WAIT_MAX, alive, client, lease_held, load, nodes, proxy_of, wait_nodes};
use std::path::Path;
use std::time::{Duration, Instant};

const AGENTS: [u64; 3] = [4, 5, 6];
const PROXIES: [u64; 2] = [10, 11];

fn token(dir: &Path, node: u64) -> Option<u64> {
    std::fs::read_to_string(dir.join(format!("token-{node}"))).ok()?.trim().parse().ok()
}

async fn wait_for_token(dir: &Path, node: u64, what: &str) -> u64 {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some(token) = token(dir, node) {
            return token;
        }
        assert!(Instant::now() < deadline, "{what}: no token from node {node} within {WAIT_MAX:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many times the agent joined (each join is a new session).
fn joins(agent: &Proc) -> usize {
    agent.log().lines().filter(|l| l.contains("joined lease=")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_go_through_proxies_and_survive_a_proxy_crash() {
    let dir = std::env::temp_dir().join(format!("haven-proxies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::new(&dir, 3, &[]);
    cluster.start_all();
    let leader = cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    let endpoints = cluster.endpoints(leader);
    let mut proxies: Vec<Proc> = PROXIES.iter().map(|&id| Proc::proxy(id, &dir, &endpoints)).collect();
    let client = client(endpoints.clone());
    wait_nodes(&client, "the proxies join", |n| PROXIES.iter().all(|&p| alive(n, p))).await;
    let mut agents: Vec<Proc> = AGENTS.iter().map(|&id| Proc::agent(id, &dir, &endpoints, false)).collect();
    let assigned =
        |n: &[serde_json::Value]| AGENTS.iter().all(|&a| proxy_of(n, a).is_some_and(|p| PROXIES.contains(&p)));
    wait_nodes(&client, "every agent is assigned a proxy", assigned).await;
    let deadline = Instant::now() + WAIT_MAX;
    while !agents.iter().all(|a| a.log().contains("reporting through a proxy")) {
        assert!(Instant::now() < deadline, "every agent reports through its proxy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Through proxies, agents' requests reach no station: what remains are
    // the proxies' own keep-alives (3 a second each) and the proxies' batches.
    let before: Vec<(u64, u64)> = futures_join(&endpoints).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<(u64, u64)> = futures_join(&endpoints).await;
    let agent_requests: u64 = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).sum();
    let proxy_requests: u64 = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).sum();
    println!(
        "in 2 s through proxies: {agent_requests} agent requests, {proxy_requests} proxy requests at the stations"
    );
    assert!(proxy_requests > 0, "the proxies send batches and poll commands");
    // Direct, three agents polling every 50 ms would make at least 120.
    assert!(agent_requests < 40, "{agent_requests} agent requests in 2 s: agents bypass their proxies");

    let script = format!("echo $HAVEN_FENCING_TOKEN > {}/token-$HAVEN_NODE; exec sleep 600", dir.display());
    let service = serde_json::json!({
        "name": "web", "command": "/bin/sh", "args": ["-c", script],
        "kind": "singleton", "placement": { "preferred": [4, 5] },
    });
    let added: Result<serde_json::Value, _> =
        client.call_v1(reqwest::Method::POST, "/v1/services", Some(&service), Retry::NotRepeatable).await;
    added.expect("the service is queued");
    let first = wait_for_token(&dir, 4, "first placement").await;
    agents[0].crash();
    let crashed = Instant::now();
    let second = wait_for_token(&dir, 5, "failover").await;
    println!("failover through proxies: token {first} on n4 → {second} on n5 in {} ms", crashed.elapsed().as_millis());
    assert!(second > first, "the replacement's token {second} is above {first}");

    // Kill the proxy of node 5 (which runs web now): its agents must not lose their leases.
    let now = nodes(&client).await;
    let victim = proxy_of(&now, 5).expect("n5 has a proxy");
    let survivor = PROXIES.into_iter().find(|&p| p != victim).unwrap();
    let orphans: Vec<u64> = [5, 6].into_iter().filter(|&a| proxy_of(&now, a) == Some(victim)).collect();
    let joins_before: Vec<usize> = agents.iter().map(joins).collect();
    proxies[PROXIES.iter().position(|&p| p == victim).unwrap()].crash();
    let killed = Instant::now();
    let moved = |n: &[serde_json::Value]| orphans.iter().all(|&a| proxy_of(n, a) == Some(survivor));
    wait_nodes(&client, "the dead proxy's agents move to the other", moved).await;
    println!("proxy n{victim} killed: {orphans:?} moved to n{survivor} in {} ms", killed.elapsed().as_millis());
    let deadline = Instant::now() + WAIT_MAX;
    let through = format!("reporting through a proxy proxy={survivor}");
    while !orphans.iter().all(|&a| agents[AGENTS.iter().position(|&x| x == a).unwrap()].log().contains(&through)) {
        assert!(Instant::now() < deadline, "the moved agents report through n{survivor}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = nodes(&client).await;
    assert!(alive(&now, 5) && alive(&now, 6), "n5 and n6 stay alive: {now:#?}");
    assert_eq!(agents.iter().map(joins).collect::<Vec<_>>(), joins_before, "no agent joined again: no lease lost");
    assert_eq!(token(&dir, 5), Some(second), "web kept running on n5 under its token");

    // Freeze the last proxy for three lease TTLs: its requests time out
    // instead of being refused, and the agents must still keep their leases.
    let frozen = &proxies[PROXIES.iter().position(|&p| p == survivor).unwrap()];
    frozen.freeze(true);
    let gone = |n: &[serde_json::Value]| !alive(n, survivor) && [5, 6].iter().all(|&a| proxy_of(n, a).is_none());
    wait_nodes(&client, "the frozen proxy's lease expires and its agents go to the stations", gone).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = nodes(&client).await;
    assert!(alive(&now, 5) && alive(&now, 6), "n5 and n6 stay alive with their proxy frozen: {now:#?}");
    assert_eq!(agents.iter().map(joins).collect::<Vec<_>>(), joins_before, "no lease lost to a frozen proxy");
    assert_eq!(token(&dir, 5), Some(second), "web untouched by the frozen proxy");
    frozen.freeze(false);

    // Woken, the proxy joins again under a new lease; stopped cleanly, it
    // revokes that lease before it exits (its agents move at once).
    let index = PROXIES.iter().position(|&p| p == survivor).unwrap();
    let deadline = Instant::now() + WAIT_MAX;
    while proxies[index].log().matches("proxy joined").count() < 2 {
        assert!(Instant::now() < deadline, "the woken proxy joins again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = proxies[index].log();
    let joined = log.lines().rev().find(|l| l.contains("proxy joined")).unwrap();
    let lease: i64 = joined.split("lease=").nth(1).and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap();
    assert!(lease_held(&client, lease).await, "the stations hold lease {lease}");
    proxies[index].stop();
    assert!(!lease_held(&client, lease).await, "lease {lease} was revoked before the proxy exited");
    drop(agents);
    drop(proxies);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn futures_join(endpoints: &[String]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for endpoint in endpoints {
        out.push(load(endpoint).await);
    }
    out
}
