//! The client and CLI commands against a running server, shared by the
//! tests that run them against a real etcd (`against_etcd.rs`) and against
//! a real Haven station (`crates/daemon/tests/cli_commands.rs`, which
//! includes this file by path): kv (get/put/del with prefix, limit,
//! revision), txn in the line format, watch from an old revision with
//! previous values, leases, membership, status, and failover past a closed
//! first endpoint.
//!
//! In: a client whose first endpoint refuses connections and whose second
//! is the server's `url`, and the server's member name. Out: a panic naming
//! the first command whose output is wrong.

#![allow(dead_code)] // each including test uses its own part

use haven_client::cli::kv::{self, DelArgs, GetArgs, KvCommand, PutArgs, WatchArgs};
use haven_client::cli::lease::{self, LeaseCommand};
use haven_client::cli::member::{self, MemberCommand};
use haven_client::cli::{OutputFormat, Printer, status};
use haven_client::{Client, ClientConfig, ClientError, MemberAddRequest, RangeRequest};
use std::net::TcpListener;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

pub fn client(endpoints: &[&str]) -> Client {
    Client::new(ClientConfig {
        endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    })
    .unwrap()
}

pub async fn wait_ready(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.range(&RangeRequest { key: b"x".to_vec(), ..Default::default() }).await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start answering within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a CLI command's `execute` and returns what it printed.
macro_rules! printed {
    ($format:expr, |$printer:ident| $body:expr) => {{
        let mut out: Vec<u8> = Vec::new();
        {
            let mut printer = Printer::new($format, &mut out);
            let $printer = &mut printer;
            $body.await.expect("the command succeeds");
        }
        String::from_utf8(out).unwrap()
    }};
}

/// Every command against the server at `url`, whose one member (or the
/// member behind `url`) is named `name`.
pub async fn run_all(url: &str, name: &str) {
    let closed = format!("http://127.0.0.1:{}", free_port());
    // The first endpoint refuses connections: every request fails over.
    let client = client(&[&closed, url]);
    wait_ready(&client).await;
    assert_eq!(client.preferred_endpoint(), url, "the endpoint that answered is remembered");

    kv_commands(&client).await;
    txn_command(&client).await;
    watch_command(&client).await;
    lease_commands(&client).await;
    member_commands(&client, url, name).await;
    status_command(&client, url, name).await;
}

async fn kv_commands(client: &Client) {
    let table = OutputFormat::Table;
    for (key, value) in [("app/a", "1"), ("app/b", "two words"), ("other", "x")] {
        let put = PutArgs { key: key.into(), value: value.into(), lease: None };
        let text = printed!(table, |p| kv::execute(client, KvCommand::Put(put), p));
        assert!(text.starts_with("OK, revision "), "{text}");
    }
    let get = |key: &str, prefix: bool, limit: i64, rev: i64| GetArgs {
        key: key.into(),
        prefix,
        limit,
        rev,
        serializable: false,
    };
    let text = printed!(table, |p| kv::execute(client, KvCommand::Get(get("app/", true, 0, 0)), p));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[1].starts_with("app/a  1") && rows[2].starts_with("app/b  two words"), "{text}");
    assert!(rows[3].starts_with("2 of 2 key(s)"), "{text}");
    let text = printed!(table, |p| kv::execute(client, KvCommand::Get(get("app/", true, 1, 0)), p));
    assert!(text.contains("1 of 2 key(s)") && text.contains("raise --limit"), "{text}");

    let json = printed!(OutputFormat::Json, |p| kv::execute(client, KvCommand::Get(get("app/a", false, 0, 0)), p));
    let answer: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(answer["kvs"][0]["value"], "MQ==", "JSON output is etcd's own: {json}");
    let created: i64 = answer["kvs"][0]["mod_revision"].as_str().unwrap().parse().unwrap();

    let overwrite = PutArgs { key: "app/a".into(), value: "changed".into(), lease: None };
    printed!(table, |p| kv::execute(client, KvCommand::Put(overwrite), p));
    let text = printed!(table, |p| kv::execute(client, KvCommand::Get(get("app/a", false, 0, created)), p));
    assert!(text.lines().nth(1).unwrap().starts_with("app/a  1 "), "--rev reads the old value: {text}");

    let del = DelArgs { key: "app/".into(), prefix: true };
    let text = printed!(table, |p| kv::execute(client, KvCommand::Del(del), p));
    assert!(text.starts_with("deleted 2 key(s)"), "{text}");
    let error =
        kv::execute(client, KvCommand::Get(get("app/a", false, 0, 1 << 40)), &mut Printer::new(table, &mut Vec::new()))
            .await
            .unwrap_err();
    assert!(error.to_string().contains("future revision"), "{error}");
}

async fn txn_command(client: &Client) {
    let table = OutputFormat::Table;
    let text = "val(\"other\") = \"x\"\n\nput other y\nget other\n\nget other\n";
    let out = printed!(table, |p| kv::txn(client, text, p));
    assert!(out.starts_with("SUCCESS"), "{out}");
    assert!(out.contains("put: OK") && out.contains("other  y "), "{out}");
    let out = printed!(table, |p| kv::txn(client, text, p));
    assert!(out.starts_with("FAILURE") && out.contains("other  y "), "the compare now fails: {out}");
    let error = kv::txn(client, "mod(other) >", &mut Printer::new(table, &mut Vec::new())).await.unwrap_err();
    assert!(matches!(error, ClientError::Usage(_)) && error.to_string().contains("line 1"), "{error}");
}

async fn watch_command(client: &Client) {
    let first = client
        .put(&haven_client::PutRequest { key: b"w/1".to_vec(), value: b"a".to_vec(), ..Default::default() })
        .await
        .unwrap();
    client
        .put(&haven_client::PutRequest { key: b"w/2".to_vec(), value: b"b".to_vec(), ..Default::default() })
        .await
        .unwrap();
    client
        .delete_range(&haven_client::DeleteRangeRequest { key: b"w/1".to_vec(), ..Default::default() })
        .await
        .unwrap();
    let args = WatchArgs { key: "w/".into(), prefix: true, rev: first.header.revision, prev_kv: true, count: Some(3) };
    let watching = printed!(OutputFormat::Table, |p| async {
        let watch = kv::execute(client, KvCommand::Watch(args), p);
        tokio::time::timeout(Duration::from_secs(10), watch).await.expect("three events within 10 s")
    });
    let lines: Vec<&str> = watching.lines().collect();
    let rev = first.header.revision;
    assert_eq!(
        lines,
        [format!("{rev} PUT w/1 = a"), format!("{} PUT w/2 = b", rev + 1), format!("{} DELETE w/1 (was a)", rev + 2)]
    );
}

async fn lease_commands(client: &Client) {
    let table = OutputFormat::Table;
    let granted = printed!(table, |p| lease::execute(client, LeaseCommand::Grant { ttl: 60 }, p));
    let id_text = granted.split_whitespace().nth(1).unwrap().to_owned();
    assert!(granted.ends_with("granted with TTL 60s\n"), "{granted}");
    let id = i64::from_str_radix(&id_text, 16).unwrap();
    let put = PutArgs { key: "leased".into(), value: "v".into(), lease: Some(id) };
    printed!(table, |p| kv::execute(client, KvCommand::Put(put), p));
    let listed = printed!(table, |p| lease::execute(client, LeaseCommand::Ls, p));
    let row = listed.lines().find(|line| line.starts_with(&id_text)).unwrap_or_else(|| panic!("{listed}"));
    assert!(row.ends_with("60s          1"), "one key on the lease: {listed}");
    let kept = printed!(table, |p| lease::execute(client, LeaseCommand::Keepalive { id, once: true }, p));
    assert_eq!(kept, format!("lease {id_text} kept alive, TTL 60s\n"));
    printed!(table, |p| lease::execute(client, LeaseCommand::Revoke { id }, p));
    let gone = client.range(&RangeRequest { key: b"leased".to_vec(), ..Default::default() }).await.unwrap();
    assert_eq!(gone.count, 0, "revoking deletes the lease's keys");
    let error =
        lease::execute(client, LeaseCommand::Keepalive { id, once: true }, &mut Printer::new(table, &mut Vec::new()))
            .await
            .unwrap_err();
    assert!(matches!(error, ClientError::LeaseNotFound { .. }), "{error}");
}

async fn member_commands(client: &Client, url: &str, name: &str) {
    let table = OutputFormat::Table;
    let listed = printed!(table, |p| member::execute(client, MemberCommand::Ls, p));
    let row = listed.lines().find(|line| line.contains(url)).unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains(&format!("{name}  ")), "{listed}");
    let peer = format!("http://127.0.0.1:{}", free_port());
    let add = MemberCommand::Add { name: "t2".into(), peer_urls: vec![peer.clone()], learner: true };
    let added = printed!(table, |p| member::execute(client, add, p));
    assert!(added.contains("added as a learner") && added.contains(&format!("t2={peer}")), "{added}");
    let id = client.member_list().await.unwrap().members.iter().find(|m| m.peer_urls == [peer.clone()]).unwrap().id;
    let error = member::execute(client, MemberCommand::Promote { id }, &mut Printer::new(table, &mut Vec::new()))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("has not caught up"),
        "a learner that never started cannot be promoted: {error}"
    );
    let again =
        client.member_add(&MemberAddRequest { peer_urls: vec![peer.clone()], is_learner: true }).await.unwrap_err();
    assert!(
        matches!(again, ClientError::Server { status: 412, .. }),
        "a second add of one peer URL is refused: {again}"
    );
    assert!(again.to_string().contains("haven member ls"), "{again}");
    let removed = printed!(table, |p| member::execute(client, MemberCommand::Rm { id }, p));
    assert!(removed.starts_with(&format!("member {id:x} removed")) && !removed.contains(&peer), "{removed}");
}

async fn status_command(client: &Client, url: &str, name: &str) {
    let text = printed!(OutputFormat::Table, |p| status::execute(client, p));
    let rows: Vec<&str> = text.lines().collect();
    let leader = rows.iter().find(|row| row.starts_with(&format!("{name}*"))).unwrap_or_else(|| panic!("{text}"));
    assert!(leader.contains(url) && leader.contains("leader"), "{text}");
    assert!(leader.trim_end().ends_with(" 0"), "the leader has no lag: {text}");
    assert!(text.contains("is unreachable: "), "the closed endpoint is reported: {text}");
}
