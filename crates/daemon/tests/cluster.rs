//! Three `haven station`s on loopback in one process, spoken to only
//! through the etcd v3 JSON API.
//!
//! In: real stations (executor, WAL on disk, HTTP). Out: checks that any
//! member takes writes (followers forward them), that serializable reads
//! are served without a leader, that an abrupt kill and restart loses no
//! acknowledged write, that a member added at runtime joins as a learner,
//! becomes a voter and can replace a removed one, and that `/health` and
//! `/metrics` tell the truth.

mod common;

use common::{Cluster, eventually};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_through_a_follower_is_readable_from_every_member() {
    let cluster = Cluster::start("follower-put", 3, 3_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let follower = cluster.follower_of(leader);
    let (status, body) = cluster.put(follower, "greeting", "hello").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["header"]["revision"].as_str().is_some(), "etcd's header: {body}");
    for id in 1..=3 {
        assert_eq!(cluster.get(id, "greeting", false).await, Ok(Some("hello".into())), "linearizable on n{id}");
        let applied = || async { cluster.get(id, "greeting", true).await == Ok(Some("hello".into())) };
        eventually(&format!("n{id} applied the put"), applied).await;
    }
    assert_eq!(cluster.health(follower).await, 200);
    let metrics = cluster.http.get(format!("{}/metrics", cluster.client_url(follower))).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    for name in ["haven_raft_term", "haven_commit_index", "haven_proposals_total", "haven_request_duration_seconds"] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert!(text.contains("haven_proposals_total 1"), "the follower took one write:\n{text}");
    let fsyncs = text.lines().find_map(|line| line.strip_prefix("haven_disk_fsync_duration_seconds_count "));
    let fsyncs: u64 = fsyncs.and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(fsyncs > 0, "the WAL's fsyncs are timed:\n{text}");
    assert!(text.contains("haven_disk_fsync_duration_seconds_bucket{le=\"+Inf\"}"), "{text}");

    let (status, body) = cluster.post(follower, "/v3/lease/grant", json!({ "TTL": "60" })).await;
    assert_eq!(status, 200, "{body}");
    let metrics_url = format!("{}/metrics", cluster.client_url(follower));
    eventually("the follower's metrics count the lease and the store", || async {
        let text = cluster.http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok());
        value("haven_leases ") == Some(1)
            && value("haven_store_revision ") == Some(2)
            && value("haven_store_bytes ").is_some_and(|b| b > 0)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serializable_read_is_served_by_a_member_without_a_leader() {
    let mut cluster = Cluster::start("no-leader", 3, 1_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    assert_eq!(cluster.put(leader, "k", "v1").await.0, 200);
    let lonely = cluster.follower_of(leader);
    eventually("the follower applied the put", || async {
        cluster.get(lonely, "k", true).await == Ok(Some("v1".into()))
    })
    .await;
    for id in (1..=3).filter(|&id| id != lonely) {
        cluster.crash(id);
    }
    eventually("the lonely member lost its leader", || async { cluster.health(lonely).await == 503 }).await;
    let (status, body) = cluster.post(lonely, "/v3/maintenance/status", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], json!(["etcdserver: no leader"]), "as etcd's status says it: {body}");
    assert_eq!(body.get("leader"), None, "leader 0 is left out, as etcd does: {body}");
    assert_eq!(cluster.get(lonely, "k", true).await, Ok(Some("v1".into())), "served from the applied state");
    let refused = cluster.get(lonely, "k", false).await;
    assert!(refused.is_err(), "a linearizable read needs a leader: {refused:?}");
    let (status, _) = cluster.put(lonely, "k", "v2").await;
    assert_ne!(status, 200, "no write without a quorum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cluster_restarts_with_every_acknowledged_write() {
    let mut cluster = Cluster::start("restart", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let mut acknowledged = Vec::new();
    for i in 0..40u64 {
        let through = 1 + i % 3;
        let (key, value) = (format!("key-{i}"), format!("value-{i}"));
        if cluster.put(through, &key, &value).await.0 == 200 {
            acknowledged.push((key, value));
        }
        if i == 20 {
            // One member killed and restarted in the middle of the writes.
            cluster.crash(2);
            tokio::time::sleep(Duration::from_millis(200)).await;
            cluster.launch(2);
        }
    }
    assert!(acknowledged.len() >= 30, "most writes acknowledged: {}", acknowledged.len());
    for id in 1..=3 {
        cluster.crash(id);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in 1..=3 {
        cluster.launch(id);
    }
    cluster.wait_for_leader(&[1, 2, 3]).await;
    for (key, value) in &acknowledged {
        assert_eq!(cluster.get(1, key, false).await, Ok(Some(value.clone())), "{key} after the restart");
    }
    for id in 1..=3 {
        assert!(cluster.stop(id).await.is_ok(), "n{id} stops cleanly");
    }
}

/// Reads newline-delimited JSON from `response` until `enough` says stop.
async fn read_lines(
    response: &mut reqwest::Response,
    mut enough: impl FnMut(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let (mut lines, mut buf) = (Vec::new(), Vec::new());
    while !enough(&lines) {
        let chunk = tokio::time::timeout(common::WAIT_MAX, response.chunk()).await.expect("a watch line in time");
        let chunk = chunk.expect("the stream stays up").expect("the stream does not end");
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            lines.push(serde_json::from_slice(&line).expect("a JSON line"));
        }
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_a_follower_sees_writes_made_through_another_member_in_order() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cluster = Cluster::start("watch", 3, 3_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let watcher = cluster.follower_of(leader);
    let writer = (1..=3).find(|&id| id != leader && id != watcher).unwrap();
    let create = serde_json::json!({ "create_request": { "key": b64("w"), "range_end": b64("x") } });
    let url = format!("{}/v3/watch", cluster.client_url(watcher));
    let mut response = cluster.http.post(url).json(&create).send().await.expect("the watch opens");
    assert_eq!(response.status(), 200);
    let created = read_lines(&mut response, |lines| !lines.is_empty()).await;
    assert_eq!(created[0]["result"]["created"], true, "{created:?}");
    for i in 0..5 {
        assert_eq!(cluster.put(writer, &format!("w{i}"), "v").await.0, 200);
    }
    let events = |lines: &[serde_json::Value]| -> Vec<u64> {
        let all = lines.iter().flat_map(|l| l["result"]["events"].as_array().cloned().unwrap_or_default());
        all.map(|e| e["kv"]["mod_revision"].as_str().unwrap().parse().unwrap()).collect()
    };
    let lines = read_lines(&mut response, |lines| events(lines).len() >= 5).await;
    let revisions = events(&lines);
    assert_eq!(revisions.len(), 5, "{lines:?}");
    assert!(revisions.windows(2).all(|w| w[1] == w[0] + 1), "every revision once, in order: {revisions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_at_runtime_catches_up_votes_and_replaces_a_removed_one() {
    let mut cluster = Cluster::start("membership", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    assert_eq!(cluster.put(1, "before", "v1").await.0, 200);

    let peer_url = cluster.prepare_joining();
    let (status, body) = cluster.post(2, "/v3/cluster/member/add", json!({ "peerURLs": [peer_url] })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["ID"], "4", "the next unused id: {body}");
    assert_eq!(body["member"]["isLearner"], true, "a new member starts as a learner: {body}");
    cluster.launch(4);
    eventually("n4 caught up and was promoted", || async {
        cluster.member_list(1).await == vec![(1, false), (2, false), (3, false), (4, false)]
    })
    .await;
    eventually("n4 replicated the earlier write", || async {
        cluster.get(4, "before", true).await == Ok(Some("v1".into()))
    })
    .await;

    let (status, body) = cluster.post(4, "/v3/cluster/member/remove", json!({ "ID": "1" })).await;
    assert_eq!(status, 200, "{body}");
    cluster.crash(1);
    eventually("n1 left the member list", || async {
        cluster.member_list(2).await == vec![(2, false), (3, false), (4, false)]
    })
    .await;
    // n1 may have led when it was removed and crashed: wait out its old term.
    eventually("n2..n4 agree on a leader other than n1", || async {
        let seen = [cluster.leader_seen_by(2).await, cluster.leader_seen_by(3).await, cluster.leader_seen_by(4).await];
        seen[0] != 0 && seen[0] != 1 && seen.iter().all(|&l| l == seen[0])
    })
    .await;
    // With n1 gone, n2..n4 are the voters: a write through the newcomer commits.
    eventually("a write through n4 commits", || async { cluster.put(4, "after", "v2").await.0 == 200 }).await;
    assert_eq!(cluster.get(3, "after", false).await, Ok(Some("v2".into())));
    let (status, body) = cluster.post(2, "/v3/cluster/member/remove", json!({ "ID": "1" })).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("etcdserver: member not found")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_answers_once_the_learner_votes_as_etcds_does() {
    let mut cluster = Cluster::start("promote", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let peer_url = cluster.prepare_joining();
    let add = json!({ "peerURLs": [peer_url], "isLearner": true });
    let (status, body) = cluster.post(1, "/v3/cluster/member/add", add).await;
    assert_eq!((status, body["member"]["isLearner"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(cluster.put(1, "before", "v1").await.0, 200);
    cluster.launch(4);
    eventually("n4 caught up as a learner", || async { cluster.get(4, "before", true).await == Ok(Some("v1".into())) })
        .await;
    assert_eq!(cluster.member_list(1).await, vec![(1, false), (2, false), (3, false), (4, true)], "--learner waits");

    let (status, body) = cluster.post(2, "/v3/cluster/member/promote", json!({ "ID": "4" })).await;
    assert_eq!(status, 200, "{body}");
    let n4 = body["members"].as_array().unwrap().iter().find(|m| m["ID"] == "4").cloned().unwrap();
    let learner = n4.get("isLearner").and_then(serde_json::Value::as_bool).unwrap_or(false);
    assert!(!learner, "listed as a voter, not as a learner still: {body}");
}

/// The leader that commits its own removal applies it, so it knows. (A
/// removed follower may not: see the next test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_leader_that_keeps_running_refuses_requests_at_once() {
    let cluster = Cluster::start("removed", 3, 3_000);
    let removed = cluster.wait_for_leader(&[1, 2, 3]).await;
    let (status, body) = cluster.post(removed, "/v3/cluster/member/remove", json!({ "ID": removed.to_string() })).await;
    assert_eq!(status, 200, "{body}");
    eventually("the removed member applied its removal", || async {
        let (status, body) = cluster.put(removed, "k", "v").await;
        status == 503 && body["message"].as_str().is_some_and(|m| m.contains("permanently removed"))
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = cluster.put(removed, "k", "v").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not at the deadline: {:?}",
        started.elapsed()
    );
    let survivor = (1..=3).find(|&id| id != removed).unwrap();
    eventually("the others elect a leader and go on", || async { cluster.put(survivor, "k", "v").await.0 == 200 })
        .await;
}

/// A removed follower may not apply its own removal: the leader stops
/// replicating to it once the configuration without it is appended. It
/// usually hears of the table's change first (the others keep dialling it
/// until that configuration is in force); otherwise, once a client request
/// finds no leader, it asks the others where it stands (`GET
/// /haven/v1/members/{id}/standing`; the next test needs that way). Either
/// way its clients are refused in about a second instead of waiting out the
/// 10 s request timeout for "no leader".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_follower_that_keeps_running_finds_out_and_refuses_requests() {
    let cluster = Cluster::start("removed-follower", 3, 10_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let removed = cluster.follower_of(leader);
    let (status, body) = cluster.post(leader, "/v3/cluster/member/remove", json!({ "ID": removed.to_string() })).await;
    assert_eq!(status, 200, "{body}");
    let standing = format!("{}/haven/v1/members/{removed}/standing", cluster.client_url(leader));
    let answer: serde_json::Value = cluster.http.get(&standing).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["standing"], "removed", "{answer}");
    assert_eq!(answer["member_id"], leader.to_string(), "{answer}");
    // Until its election timer fires it still believes in the old leader,
    // and a request relayed there meanwhile has an unknown outcome.
    eventually("the removed follower lost its leader", || async { cluster.health(removed).await == 503 }).await;
    let started = std::time::Instant::now();
    let (status, body) = cluster.put(removed, "k", "v").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("permanently removed")), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "found out long before the 10 s request timeout: {:?}",
        started.elapsed()
    );
    let survivor = (1..=3).find(|&id| id != removed).unwrap();
    assert_eq!(cluster.put(survivor, "k", "v").await.0, 200, "the others go on");
}

/// A member removed while it was down restarts from its data directory,
/// which still lists it, and hears from nobody: it finds out the same way,
/// without any client asking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_down_finds_out_after_its_restart() {
    let mut cluster = Cluster::start("removed-down", 3, 10_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let removed = cluster.follower_of(leader);
    assert_eq!(cluster.put(leader, "k", "v").await.0, 200);
    cluster.stop(removed).await.expect("a clean stop");
    let (status, body) = cluster.post(leader, "/v3/cluster/member/remove", json!({ "ID": removed.to_string() })).await;
    assert_eq!(status, 200, "{body}");
    cluster.launch(removed);
    let url = format!("{}/metrics", cluster.client_url(removed));
    eventually("the restarted member found out by itself", || async {
        let Ok(response) = cluster.http.get(&url).send().await else { return false };
        response.text().await.unwrap_or_default().lines().any(|l| l == "haven_removed 1")
    })
    .await;
    let started = std::time::Instant::now();
    let (status, body) = cluster.put(removed, "k", "v").await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once: {:?}", started.elapsed());
}

/// n4 is down while n5 and n6 join and n1..n3 leave, so on its restart its
/// configuration names only members that are gone, and no member it knows
/// can reach it. The leader dials it anyway (its table names n4); n4 takes
/// the stranger's hello as a guest's (its address is in the hello) and
/// dials it back, catches up, and serves what was written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarted_after_every_member_it_knew_was_replaced_catches_up() {
    let mut cluster = Cluster::start("replaced", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let voters = |ids: &[u64]| ids.iter().map(|&id| (id, false)).collect::<Vec<_>>();
    join(&mut cluster, &voters(&[1, 2, 3, 4])).await;
    cluster.stop(4).await.expect("a clean stop");
    join(&mut cluster, &voters(&[1, 2, 3, 4, 5])).await;
    join(&mut cluster, &voters(&[1, 2, 3, 4, 5, 6])).await;
    for gone in 1..=3 {
        let (status, body) = cluster.post(5, "/v3/cluster/member/remove", json!({ "ID": gone.to_string() })).await;
        assert_eq!(status, 200, "{body}");
        cluster.crash(gone);
        let left: Vec<u64> = (gone + 1..=6).collect();
        eventually(&format!("n{gone} left"), || async { cluster.member_list(5).await == voters(&left) }).await;
    }
    eventually("n5 and n6 write without n4", || async { cluster.put(5, "meanwhile", "v").await.0 == 200 }).await;
    cluster.launch(4);
    eventually("n4 caught up through members it had never heard of", || async {
        cluster.get(4, "meanwhile", true).await == Ok(Some("v".into()))
    })
    .await;
}

/// Adds the next member through n1 (still running when this is called), starts it,
/// and waits until the member list is `expected`.
async fn join(cluster: &mut Cluster, expected: &[(u64, bool)]) {
    let peer_url = cluster.prepare_joining();
    let (status, body) = cluster.post(1, "/v3/cluster/member/add", json!({ "peerURLs": [peer_url] })).await;
    assert_eq!(status, 200, "{body}");
    let id = expected.last().expect("the new member").0;
    cluster.launch(id);
    eventually(&format!("n{id} caught up and was promoted"), || async { cluster.member_list(1).await == expected })
        .await;
}

/// etcd's member answers a write once it applied it itself, so the same
/// member never shows an older state afterwards. A follower here relays the
/// write and gets the leader's answer, then waits until it applied that
/// revision (the leader tells it of the commit at once): a serializable
/// read right after sees the write, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_a_write_once_it_applied_it_itself() {
    let cluster = Cluster::start("read-your-writes", 3, 3_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let follower = cluster.follower_of(leader);
    for i in 0..30 {
        let value = format!("v{i}");
        let (status, body) = cluster.put(follower, "mine", &value).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            cluster.get(follower, "mine", true).await,
            Ok(Some(value)),
            "write {i}, read from the same follower"
        );
    }
}
