//! An agent's command fetch that waits at a station, on three real
//! stations on loopback (no agent process: the test joins node 4 by hand).
//!
//! In: `GET /haven/v1/agents/4/commands?known=D&wait_ms=W` on a follower.
//! Out: checks that the fetch is held while node 4's commands still have
//! digest `D`, answered as soon as a decision gives node 4 a command (long
//! before `W`), answered at once when `D` is stale or absent, and answered
//! with the unchanged list once `W` has passed.

mod common;

use common::{Cluster, WAIT_MAX};
use haven_daemon::agent_api::commands_digest;
use haven_ha::AgentCommand;
use serde_json::json;
use std::time::{Duration, Instant};

/// A wait no test run comes near: an answer before it was woken.
const HELD_MS: u64 = 20_000;

async fn fetch(cluster: &Cluster, id: u64, query: &str) -> Vec<AgentCommand> {
    let url = format!("{}/haven/v1/agents/4/commands{query}", cluster.client_url(id));
    let response = cluster.http.get(url).timeout(Duration::from_millis(HELD_MS * 2)).send().await.expect("answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a list of commands")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_answered_when_a_decision_commands_its_node_and_not_before() {
    let cluster = Cluster::start("agent-commands", 3, 3_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let follower = cluster.follower_of(leader);
    let (status, lease) = cluster.post(leader, "/v3/lease/grant", json!({ "TTL": "60" })).await;
    assert_eq!(status, 200, "{lease}");
    let lease: i64 = lease["ID"].as_str().expect("a lease id").parse().unwrap();
    let join = json!({ "address": "127.0.0.1", "lease": lease });
    let (status, body) = cluster.post(follower, "/haven/v1/agents/4/join", join).await;
    assert_eq!(status, 202, "{body}");

    let none = commands_digest(&[]);
    let query = format!("?known={none}&wait_ms={HELD_MS}");
    let held = fetch(&cluster, follower, &query);
    tokio::pin!(held);
    let early = tokio::time::timeout(Duration::from_millis(500), held.as_mut()).await;
    assert!(early.is_err(), "no command for node 4 yet: the fetch is held");

    let web = json!({ "name": "web", "command": "/bin/sleep", "args": ["600"], "kind": "singleton" });
    let added = Instant::now();
    let (status, body) = cluster.post(follower, "/v1/services", web).await;
    assert_eq!(status, 202, "{body}");
    let commands = tokio::time::timeout(WAIT_MAX, held).await.expect("answered once web is placed");
    let took = added.elapsed();
    assert!(took < Duration::from_millis(HELD_MS / 2), "woken by the decision, not by the wait: {took:?}");
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].service(), "web");
    println!("a held fetch answered {} ms after the service was added", took.as_millis());

    let at_once = Instant::now();
    assert_eq!(fetch(&cluster, follower, "").await, commands, "no wait asked: at once");
    assert_eq!(fetch(&cluster, follower, &format!("?known={none}&wait_ms={HELD_MS}")).await, commands, "stale");
    assert!(at_once.elapsed() < Duration::from_millis(HELD_MS / 2), "neither waited");

    let known = commands_digest(&commands);
    let waited = Instant::now();
    let same = fetch(&cluster, leader, &format!("?known={known}&wait_ms=300")).await;
    assert_eq!(same, commands, "unchanged after the wait");
    assert!(waited.elapsed() >= Duration::from_millis(300), "held for the wait: {:?}", waited.elapsed());
}
