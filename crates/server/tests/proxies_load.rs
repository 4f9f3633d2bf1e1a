//! Measures, and prints (asserts nothing about speed), the requests the
//! station leader takes from agents per second: N agents talking to the
//! stations directly, then N other agents through one proxy, then through
//! two. Every agent and proxy lists the leader first, so everything they
//! send lands there (the worst case for the leader: a proxy could poll a
//! follower for commands). N is `HAVEN_PROXY_LOAD_AGENTS`, 8 by default.

mod common;
mod proxies_support;

use common::cluster::Cluster;
use proxies_support::{Proc, WAIT_MAX, alive, client, load, proxy_of, wait_nodes};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3);

/// The leader's requests from agents and from proxies, per second, over `WINDOW`.
async fn rates(leader_url: &str) -> (f64, f64) {
    let before = load(leader_url).await;
    tokio::time::sleep(WINDOW).await;
    let after = load(leader_url).await;
    let per_second = |n: u64| n as f64 / WINDOW.as_secs_f64();
    (per_second(after.0 - before.0), per_second(after.1 - before.1))
}

async fn wait_through_proxy(agents: &[Proc]) {
    let deadline = Instant::now() + WAIT_MAX;
    while !agents.iter().all(|a| a.log().contains("reporting through a proxy")) {
        assert!(Instant::now() < deadline, "every agent reports through its proxy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_request_rate_from_agents_with_and_without_proxies() {
    let n: u64 = std::env::var("HAVEN_PROXY_LOAD_AGENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let dir = std::env::temp_dir().join(format!("haven-proxies-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cluster = Cluster::new(&dir, 3, &[]);
    cluster.start_all();
    let leader = cluster.leader(&[1, 2, 3], WAIT_MAX).await.expect("a leader");
    let endpoints = cluster.endpoints(leader);
    let leader_url = endpoints[0].clone();
    let client = client(endpoints.clone());

    let direct_ids: Vec<u64> = (100..100 + n).collect();
    let direct: Vec<Proc> = direct_ids.iter().map(|&id| Proc::agent(id, &dir, &endpoints, true)).collect();
    wait_nodes(&client, "the direct agents join", |ns| direct_ids.iter().all(|&a| alive(ns, a))).await;
    let (agents_direct, _) = rates(&leader_url).await;
    drop(direct);

    let mut proxies = vec![Proc::proxy(10, &dir, &endpoints)];
    wait_nodes(&client, "the proxy joins", |ns| alive(ns, 10)).await;
    let ids: Vec<u64> = (200..200 + n).collect();
    let agents: Vec<Proc> = ids.iter().map(|&id| Proc::agent(id, &dir, &endpoints, false)).collect();
    let assigned = |ns: &[serde_json::Value]| ids.iter().all(|&a| proxy_of(ns, a) == Some(10));
    wait_nodes(&client, "every agent is assigned the proxy", assigned).await;
    wait_through_proxy(&agents).await;
    let one = rates(&leader_url).await;
    drop(agents);

    proxies.push(Proc::proxy(11, &dir, &endpoints));
    wait_nodes(&client, "the second proxy joins", |ns| alive(ns, 11)).await;
    let ids: Vec<u64> = (300..300 + n).collect();
    let agents: Vec<Proc> = ids.iter().map(|&id| Proc::agent(id, &dir, &endpoints, false)).collect();
    let spread = |ns: &[serde_json::Value]| ids.iter().all(|&a| proxy_of(ns, a).is_some_and(|p| p == 10 || p == 11));
    wait_nodes(&client, "every agent is assigned a proxy", spread).await;
    wait_through_proxy(&agents).await;
    let two = rates(&leader_url).await;

    println!("leader requests per second, {n} agents (lease 1 s, polls every 50 ms, {WINDOW:?} windows):");
    println!("  direct:          {agents_direct:7.1} from agents");
    println!("  via one proxy:   {:7.1} from agents, {:7.1} from the proxy", one.0, one.1);
    println!("  via two proxies: {:7.1} from agents, {:7.1} from the proxies", two.0, two.1);
    println!("  (with proxies, the agents' figure is the proxies' own lease keep-alives)");
    drop(agents);
    drop(proxies);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
