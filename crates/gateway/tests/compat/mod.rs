//! The etcd comparison, shared by the tests that run it: the same HTTP
//! request sequences replayed against a real etcd (Debian's etcd-server)
//! and against a Haven endpoint, their JSON answers (status, body, every
//! streamed line) compared field by field. Only values that legitimately
//! differ are normalised first: cluster, member and raft term in headers,
//! member ids, names and client URLs, status figures (version, sizes,
//! indexes), a lease's remaining TTL (timing), the order of a lease's keys
//! (etcd's is Go map order), an auto-chosen lease id, and the text of JSON
//! parse errors (Go's and serde's words differ; the code and status must
//! still match).
//!
//! In: a running Haven endpoint and its cluster's size. Out: a test failure
//! listing every answer that differs. Without an `etcd` binary the
//! comparison explains how to get one and passes, unless
//! HAVEN_REQUIRE_ETCD is set (CI sets it), in which case it fails.
//!
//! Included by path from `crates/gateway/tests/etcd_compat.rs` (the gateway
//! over its in-memory backend) and `crates/daemon/tests/etcd_compat.rs` (a
//! real station: Raft, WAL, lessor, member table).

#![allow(dead_code)] // each including test uses its own part

use futures::StreamExt;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const PLACEHOLDER: &str = "<normalised>";
/// How long a streamed line may take to arrive before we give up on it.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|dir| dir.join("etcd")).find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("bound address").port()
}

/// A throwaway single-member etcd on loopback, killed and wiped on drop.
/// A throwaway etcd cluster of `members` on loopback, killed and wiped on
/// drop; `url` is the first member's client URL.
struct Etcd {
    children: Vec<Child>,
    dir: PathBuf,
    url: String,
}

impl Etcd {
    fn start(binary: &Path, members: usize) -> Etcd {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("haven-etcd-compat-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create etcd's temporary data dir");
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let cluster: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, p))| format!("e{i}=http://127.0.0.1:{p}")).collect();
        let mut children = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.join(format!("etcd{i}.log"))).expect("create etcd's log file");
            let child = Command::new(binary)
                .args(["--name", &format!("e{i}"), "--data-dir"])
                .arg(dir.join(format!("data{i}")))
                .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &cluster.join(",")])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start etcd");
            children.push(child);
        }
        Etcd { children, dir, url: format!("http://127.0.0.1:{}", ports[0].0) }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd0.log")).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(resp) = client.get(format!("{base}/health")).send().await
            && resp.status().is_success()
            && resp.text().await.is_ok_and(|t| t.contains("\"true\""))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Replaces what legitimately differs between etcd and Haven.
fn normalise(v: &mut Value) {
    let Value::Object(map) = v else {
        if let Value::Array(items) = v {
            items.iter_mut().for_each(normalise);
        }
        return;
    };
    let blank = |key: &str, map: &mut serde_json::Map<String, Value>| {
        if let Some(x) = map.get_mut(key) {
            *x = json!(PLACEHOLDER);
        }
    };
    if let Some(Value::Object(h)) = map.get_mut("header") {
        ["cluster_id", "member_id", "raft_term"].iter().for_each(|k| blank(k, h));
    }
    for key in ["members", "member"] {
        if let Some(m) = map.get_mut(key) {
            let list = if let Value::Array(list) = m { list.iter_mut().collect() } else { vec![m] };
            for member in list {
                if let Value::Object(member) = member {
                    // A started member's peer URLs are its own (the
                    // in-memory backend has no peers and reports none).
                    if member.contains_key("name") {
                        member.remove("peerURLs");
                    }
                    ["ID", "name", "clientURLs"].iter().for_each(|k| blank(k, member));
                }
            }
        }
    }
    // Members come sorted by their (random) ids: compare them as a set.
    if let Some(Value::Array(members)) = map.get_mut("members") {
        members.sort_by_key(|m| m.to_string());
    }
    blank("etcdserver", map);
    if map.contains_key("raftIndex") {
        let status = ["version", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftTerm", "raftAppliedIndex"];
        status.iter().for_each(|k| blank(k, map));
    }
    normalise_remaining_ttl(map);
    if let Some(Value::Array(leases)) = map.get_mut("leases") {
        leases.sort_by_key(|l| l["ID"].as_str().and_then(|s| s.parse::<i64>().ok()));
    }
    // etcd lists a lease's keys in Go map order, which changes from run to
    // run: compare them as a set.
    if map.contains_key("grantedTTL")
        && let Some(Value::Array(keys)) = map.get_mut("keys")
    {
        keys.sort_by_key(|k| k.to_string());
    }
    map.values_mut().for_each(normalise);
}

/// A time-to-live answer's remaining TTL depends on timing: accept any
/// value up to two seconds below the granted one.
fn normalise_remaining_ttl(map: &mut serde_json::Map<String, Value>) {
    let num = |v: Option<&Value>| v.and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok());
    if let (Some(granted), Some(ttl)) = (num(map.get("grantedTTL")), num(map.get("TTL")))
        && (granted - 2..=granted).contains(&ttl)
    {
        map.insert("TTL".into(), json!(PLACEHOLDER));
    }
}

/// Step options: which extra fields to normalise.
#[derive(Clone, Copy, Debug, Default)]
struct Loose {
    /// The error text (parse errors are worded by the JSON library).
    message: bool,
    /// A lease id the server chose.
    lease_id: bool,
}

const EXACT: Loose = Loose { message: false, lease_id: false };
const MESSAGE: Loose = Loose { message: true, lease_id: false };

/// Runs requests against one server and records normalised answers.
struct Recorder {
    client: reqwest::Client,
    base: String,
    log: Vec<(String, Value)>,
}

impl Recorder {
    fn record(&mut self, name: &str, mut value: Value, loose: Loose) {
        normalise(&mut value);
        let mut blank = |key: &str| {
            if let Some(x) = value.get_mut("body").and_then(|b| b.get_mut(key)) {
                *x = json!(PLACEHOLDER);
            }
        };
        if loose.message {
            blank("error");
            blank("message");
        }
        if loose.lease_id {
            blank("ID");
        }
        self.log.push((name.to_string(), value));
    }

    /// A unary call; records and returns the parsed body.
    async fn post_raw(&mut self, name: &str, path: &str, body: String, loose: Loose) -> Value {
        let resp = self.client.post(format!("{}{path}", self.base)).body(body).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("{name}: {path} failed at {}: {e}", self.base));
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("read the response body");
        let body: Value = serde_json::from_str(&text).unwrap_or(json!({ "not json": text }));
        self.record(name, json!({ "status": status, "body": body.clone() }), loose);
        body
    }

    async fn post(&mut self, name: &str, path: &str, body: Value) -> Value {
        self.post_raw(name, path, body.to_string(), EXACT).await
    }

    async fn get(&mut self, name: &str, path: &str) {
        let resp = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_str(&resp.text().await.expect("body")).unwrap_or(Value::Null);
        self.record(name, json!({ "status": status, "body": body }), EXACT);
    }

    /// A streaming call whose whole request body is `lines`: records the
    /// first `expect` response lines (or what came before a timeout).
    async fn stream_once(&mut self, name: &str, path: &str, lines: &[Value], expect: usize) {
        let mut conn = Stream::open(&self.client, &format!("{}{path}", self.base), &lines[0]).await;
        for line in &lines[1..] {
            conn.send(line).await;
        }
        let got = conn.lines(expect).await;
        self.record_lines(name, got);
    }

    fn record_lines(&mut self, name: &str, lines: Vec<Value>) {
        for (i, line) in lines.into_iter().enumerate() {
            self.record(&format!("{name} line {i}"), line, EXACT);
        }
    }
}

/// A streaming request (watch, keep-alive): lines go up as we send them.
struct Stream {
    up: mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    down: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Stream {
    /// Opens the call with its first message: servers answer the headers
    /// only once the first message produced a response line.
    async fn open(client: &reqwest::Client, url: &str, first: &Value) -> Stream {
        let (up, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
        let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        // Go's HTTP/1 server (etcd's) answers a request before its body
        // ends only when the client asked `Expect: 100-continue`.
        let request = client.post(url).header("expect", "100-continue").body(reqwest::Body::wrap_stream(body)).send();
        let pending = tokio::spawn(request);
        let mut s = Stream { up, down: futures::stream::empty().boxed(), buf: Vec::new() };
        s.send(first).await;
        let resp = pending.await.expect("request task").unwrap_or_else(|e| panic!("streaming request {first}: {e:?}"));
        s.down = resp.bytes_stream().boxed();
        s
    }

    async fn send(&mut self, v: &Value) {
        let mut line = v.to_string().into_bytes();
        line.push(b'\n');
        self.up.send(Ok(line)).await.expect("the request body is still open");
    }

    /// The next `n` lines, fewer if one does not come within the timeout.
    async fn lines(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                out.push(
                    serde_json::from_slice(&line).unwrap_or(json!({ "bad line": String::from_utf8_lossy(&line) })),
                );
                continue;
            }
            match tokio::time::timeout(LINE_TIMEOUT, self.down.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => {
                    out.push(json!({ "missing": "no more lines" }));
                    break;
                }
            }
        }
        out
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn kv_sequence(r: &mut Recorder) {
    r.post("put foo", "/v3/kv/put", json!({"key": b64("foo"), "value": b64("bar")})).await;
    r.post("put foo prev_kv", "/v3/kv/put", json!({"key": b64("foo"), "value": b64("baz"), "prev_kv": true})).await;
    for (k, v) in [("a", "3"), ("b", "1"), ("c", "2"), ("ab", "4")] {
        r.post(&format!("put {k}"), "/v3/kv/put", json!({"key": b64(k), "value": b64(v)})).await;
    }
    r.post("range foo", "/v3/kv/range", json!({"key": b64("foo")})).await;
    r.post("range missing", "/v3/kv/range", json!({"key": b64("nope")})).await;
    let span = json!({"key": b64("a"), "range_end": b64("d")});
    let with = |extra: Value| {
        let mut m = span.clone();
        m.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        m
    };
    r.post("range span", "/v3/kv/range", span.clone()).await;
    r.post("range limit", "/v3/kv/range", with(json!({"limit": 2}))).await;
    r.post("range sort", "/v3/kv/range", with(json!({"sort_order": "DESCEND", "sort_target": "VALUE"}))).await;
    r.post("range sort by number", "/v3/kv/range", with(json!({"sort_order": 1, "sort_target": 3, "limit": "3"})))
        .await;
    r.post("range count_only", "/v3/kv/range", with(json!({"count_only": true}))).await;
    r.post("range keys_only", "/v3/kv/range", with(json!({"keys_only": true}))).await;
    r.post("range mod filter", "/v3/kv/range", with(json!({"min_mod_revision": "5", "max_mod_revision": "6"}))).await;
    r.post("range camelCase", "/v3/kv/range", json!({"key": b64("a"), "rangeEnd": b64("b"), "countOnly": true})).await;
    r.post("range all", "/v3/kv/range", json!({"key": "AA==", "range_end": "AA=="})).await;
    r.post("range at revision", "/v3/kv/range", json!({"key": b64("foo"), "revision": "2"})).await;
    r.post("range unknown field", "/v3/kv/range", json!({"key": b64("foo"), "no_such_field": 1})).await;
    r.post("delete ab prev_kv", "/v3/kv/deleterange", json!({"key": b64("ab"), "prev_kv": true})).await;
    r.post("delete missing", "/v3/kv/deleterange", json!({"key": b64("ab")})).await;
    r.post("put x1", "/v3/kv/put", json!({"key": b64("x1"), "value": b64("1")})).await;
    r.post("put x2", "/v3/kv/put", json!({"key": b64("x2"), "value": b64("2")})).await;
    r.post("delete prefix x", "/v3/kv/deleterange", json!({"key": b64("x"), "range_end": b64("y"), "prev_kv": true}))
        .await;
    // A serializable read answers from what its member applied, which on
    // a follower may trail the last write; a linearizable read first makes
    // the member catch up, so both servers answer at the same revision.
    r.post("range linearizable", "/v3/kv/range", json!({"key": b64("x1")})).await;
    r.post("range serializable", "/v3/kv/range", with(json!({"serializable": true, "keys_only": true}))).await;
    r.post("range from key", "/v3/kv/range", json!({"key": b64("b"), "range_end": "AA==", "count_only": true})).await;
    r.post("range limit more", "/v3/kv/range", json!({"key": "AA==", "range_end": "AA==", "limit": "1"})).await;
    let ignore = json!({"key": b64("a"), "ignore_value": true, "prev_kv": true});
    r.post("put ignore_value", "/v3/kv/put", ignore).await;
    r.post("put ignore_lease", "/v3/kv/put", json!({"key": b64("a"), "value": b64("5"), "ignore_lease": true})).await;
    r.post("put empty value", "/v3/kv/put", json!({"key": b64("e"), "value": ""})).await;
    r.post("range empty value", "/v3/kv/range", json!({"key": b64("e")})).await;
    r.post("delete e", "/v3/kv/deleterange", json!({"key": b64("e")})).await;
    r.post("put deleted prev_kv", "/v3/kv/put", json!({"key": b64("e"), "value": b64("v"), "prev_kv": true})).await;
    r.post("range sort key descend", "/v3/kv/range", with(json!({"sort_order": "DESCEND", "limit": 2}))).await;
    r.post("range sort create", "/v3/kv/range", with(json!({"sort_target": "CREATE", "sort_order": "ASCEND"}))).await;
}

async fn error_sequence(r: &mut Recorder) {
    r.post("range no key", "/v3/kv/range", json!({})).await;
    r.post_raw("range empty body", "/v3/kv/range", String::new(), EXACT).await;
    r.post("put no key", "/v3/kv/put", json!({"value": b64("v")})).await;
    r.post("range future revision", "/v3/kv/range", json!({"key": b64("foo"), "revision": "1000"})).await;
    r.post_raw("range bad json", "/v3/kv/range", "{not json".to_string(), MESSAGE).await;
    r.post_raw("range json array", "/v3/kv/range", "[]".to_string(), MESSAGE).await;
    r.post_raw("put bad base64", "/v3/kv/put", r#"{"key":"Zm9v","value":"!!"}"#.to_string(), MESSAGE).await;
    r.post_raw("range bad enum", "/v3/kv/range", r#"{"key":"Zm9v","sort_order":"UP"}"#.to_string(), MESSAGE).await;
    r.post("put unknown lease", "/v3/kv/put", json!({"key": b64("foo"), "lease": "12345"})).await;
    r.post("put ignore_value missing key", "/v3/kv/put", json!({"key": b64("nope"), "ignore_value": true})).await;
    let put = json!({"request_put": {"key": b64("d"), "value": b64("1")}});
    r.post("txn duplicate key", "/v3/kv/txn", json!({"success": [put, put]})).await;
    let ops: Vec<Value> = (0..129).map(|_| json!({"request_range": {"key": b64("a")}})).collect();
    r.post("txn too many ops", "/v3/kv/txn", json!({"success": ops})).await;
    let big = format!(r#"{{"key":"{}","value":"{}"}}"#, b64("big"), b64(&"v".repeat(1_600_000)));
    r.post_raw("put too large", "/v3/kv/put", big, EXACT).await;
    let fits = format!(r#"{{"key":"{}","value":"{}"}}"#, b64("big"), b64(&"v".repeat(1_400_000)));
    r.post_raw("put large", "/v3/kv/put", fits, EXACT).await;
    r.post("delete large", "/v3/kv/deleterange", json!({"key": b64("big")})).await;
    r.post("range negative limit", "/v3/kv/range", json!({"key": b64("a"), "limit": "-1"})).await;
    r.post("range negative revision", "/v3/kv/range", json!({"key": b64("a"), "revision": "-1"})).await;
    r.post("compact zero", "/v3/kv/compaction", json!({"revision": "0"})).await;
    r.post("lease grant negative ttl", "/v3/lease/grant", json!({"TTL": "-5", "ID": "1003"})).await;
    r.post("revoke negative ttl", "/v3/lease/revoke", json!({"ID": "1003"})).await;
    r.post("range key too long", "/v3/kv/range", json!({"key": b64(&"k".repeat(2000))})).await;
    r.post("txn empty key", "/v3/kv/txn", json!({"success": [{"request_put": {"key": "", "value": b64("v")}}]})).await;
}

async fn txn_sequence(r: &mut Recorder) {
    let success = json!({
        "compare": [{"key": b64("foo"), "target": "VALUE", "result": "EQUAL", "value": b64("baz")}],
        "success": [{"request_put": {"key": b64("t"), "value": b64("1")}}, {"request_range": {"key": b64("t")}}],
        "failure": [{"request_delete_range": {"key": b64("t")}}],
    });
    r.post("txn success branch", "/v3/kv/txn", success).await;
    let failure = json!({
        "compare": [{"key": b64("foo"), "target": "VERSION", "result": "GREATER", "version": "5"}],
        "success": [{"request_put": {"key": b64("t"), "value": b64("2")}}],
        "failure": [
            {"request_delete_range": {"key": b64("t"), "prev_kv": true}},
            {"request_txn": {"success": [{"request_range": {"key": b64("foo")}}]}},
            {"request_put": {"key": b64("u"), "value": b64("3"), "prev_kv": true}},
        ],
    });
    r.post("txn failure branch", "/v3/kv/txn", failure).await;
    let targets = [
        ("version", json!({"key": b64("foo"), "target": "VERSION", "result": "EQUAL", "version": "2"})),
        ("create", json!({"key": b64("foo"), "target": "CREATE", "result": "LESS", "create_revision": "100"})),
        ("mod", json!({"key": b64("foo"), "target": "MOD", "result": "NOT_EQUAL", "mod_revision": "1"})),
        ("value", json!({"key": b64("foo"), "target": "VALUE", "result": "GREATER", "value": b64("bay")})),
        ("lease", json!({"key": b64("foo"), "target": "LEASE", "result": "EQUAL", "lease": "0"})),
        (
            "range",
            json!({"key": b64("a"), "range_end": b64("d"), "target": "VERSION", "result": "EQUAL", "version": 1}),
        ),
        ("missing key", json!({"key": b64("none"), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})),
        ("missing value", json!({"key": b64("none"), "target": "VALUE", "result": "EQUAL", "value": ""})),
        ("numbers", json!({"key": b64("foo"), "target": 2, "result": 1, "mod_revision": 1})),
    ];
    for (name, compare) in targets {
        let txn = json!({"compare": [compare], "success": [{"request_range": {"key": b64("foo"), "keys_only": true}}]});
        r.post(&format!("txn compare {name}"), "/v3/kv/txn", txn).await;
    }
    r.post("txn empty", "/v3/kv/txn", json!({})).await;
    let nested_put = json!({
        "compare": [{"key": b64("t"), "target": "CREATE", "result": "GREATER", "create_revision": "0"}],
        "success": [{"request_txn": {"success": [{"request_put": {"key": b64("t2"), "value": b64("n")}}]}}],
        "failure": [{"request_range": {"key": b64("t"), "range_end": b64("u"), "count_only": true}}],
    });
    r.post("txn nested put", "/v3/kv/txn", nested_put).await;
    r.post("delete t2", "/v3/kv/deleterange", json!({"key": b64("t2"), "prev_kv": true})).await;
    let historic = json!({"success": [{"request_range": {"key": b64("foo"), "revision": "2"}}]});
    r.post("txn range at a revision", "/v3/kv/txn", historic).await;
}

async fn compaction_sequence(r: &mut Recorder) {
    r.post("range before compaction", "/v3/kv/range", json!({"key": b64("foo"), "revision": "3"})).await;
    r.post("compact", "/v3/kv/compaction", json!({"revision": "8", "physical": true})).await;
    r.post("compact again", "/v3/kv/compaction", json!({"revision": "8"})).await;
    r.post("compact future", "/v3/kv/compaction", json!({"revision": "100000"})).await;
    r.post("range compacted", "/v3/kv/range", json!({"key": b64("foo"), "revision": "3"})).await;
    r.post("range at compaction point", "/v3/kv/range", json!({"key": b64("a"), "revision": "8"})).await;
}

async fn lease_sequence(r: &mut Recorder) {
    r.post("lease grant", "/v3/lease/grant", json!({"TTL": "30", "ID": "1000"})).await;
    r.post("lease grant again", "/v3/lease/grant", json!({"TTL": 30, "ID": 1000})).await;
    r.post("lease grant too long", "/v3/lease/grant", json!({"TTL": "100000000000"})).await;
    r.post("lease grant zero ttl", "/v3/lease/grant", json!({"TTL": "0", "ID": "1001"})).await;
    r.post("lease grant negative id", "/v3/lease/grant", json!({"TTL": "10", "ID": "-5"})).await;
    r.post("revoke zero ttl", "/v3/lease/revoke", json!({"ID": "1001"})).await;
    let auto = Loose { lease_id: true, ..EXACT };
    let granted = r.post_raw("lease grant auto id", "/v3/lease/grant", json!({"TTL": 20}).to_string(), auto).await;
    r.post("put with lease", "/v3/kv/put", json!({"key": b64("l1"), "value": b64("v"), "lease": "1000"})).await;
    r.post("put with lease 2", "/v3/kv/put", json!({"key": b64("l2"), "value": b64("v"), "lease": "1000"})).await;
    // A keep-alive's header is its member's applied revision: right after a
    // write through a follower, it shows the write only if the follower
    // answered the write once it applied it, as etcd's members do.
    r.stream_once("keepalive", "/v3/lease/keepalive", &[json!({"ID": "1000"})], 1).await;
    r.stream_once("keepalive twice", "/v3/lease/keepalive", &[json!({"ID": "1000"}), json!({"ID": 1000})], 2).await;
    r.stream_once("keepalive missing", "/v3/lease/keepalive", &[json!({"ID": "999"})], 1).await;
    r.post("timetolive keys", "/v3/lease/timetolive", json!({"ID": "1000", "keys": true})).await;
    r.post("timetolive alias", "/v3/kv/lease/timetolive", json!({"ID": "1000"})).await;
    r.post("timetolive missing", "/v3/lease/timetolive", json!({"ID": "999"})).await;
    let auto_id = granted["ID"].as_str().unwrap_or("0").to_string();
    r.post("revoke auto id", "/v3/lease/revoke", json!({"ID": auto_id})).await;
    r.post("leases", "/v3/lease/leases", json!({})).await;
    r.post("leases alias", "/v3/kv/lease/leases", json!({})).await;
    r.post("revoke", "/v3/lease/revoke", json!({"ID": "1000"})).await;
    r.post("range revoked keys", "/v3/kv/range", json!({"key": b64("l"), "range_end": b64("m")})).await;
    r.post("revoke again", "/v3/kv/lease/revoke", json!({"ID": "1000"})).await;
    r.post("leases after revoke", "/v3/lease/leases", json!({})).await;
}

/// A lease of TTL 1 (raised to the 2 s minimum by both) with a key expires:
/// its key is deleted and a watch sees the deletion.
async fn lease_expiry_sequence(r: &mut Recorder) {
    r.post("short lease", "/v3/lease/grant", json!({"TTL": "1", "ID": "2000"})).await;
    r.post("put on short lease", "/v3/kv/put", json!({"key": b64("exp"), "value": b64("v"), "lease": "2000"})).await;
    let rev = r.post("revision before expiry", "/v3/kv/range", json!({"key": b64("exp")})).await;
    let rev = rev["header"]["revision"].as_str().unwrap_or("0").to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = r.client.post(format!("{}/v3/lease/timetolive", r.base)).body(r#"{"ID":"2000"}"#).send().await;
        let text = resp.expect("timetolive").text().await.expect("body");
        if text.contains("\"TTL\":\"-1\"") || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // etcd revokes through raft a moment after the TTL says -1.
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.post("timetolive expired", "/v3/lease/timetolive", json!({"ID": "2000"})).await;
    r.post("key of expired lease", "/v3/kv/range", json!({"key": b64("exp")})).await;
    let watch = json!({"create_request": {"key": b64("exp"), "start_revision": rev, "prev_kv": true}});
    r.stream_once("watch expiry", "/v3/watch", &[watch], 2).await;
    r.stream_once("keepalive expired", "/v3/lease/keepalive", &[json!({"ID": "2000"})], 1).await;
}

async fn watch_sequence(r: &mut Recorder) {
    let old = json!({"create_request": {"key": b64("t"), "start_revision": "8", "prev_kv": true}});
    r.stream_once("watch old revision", "/v3/watch", &[old], 2).await;
    let span = json!({"create_request": {"key": b64("a"), "range_end": b64("z"), "start_revision": 9}});
    r.stream_once("watch span", "/v3/watch", &[span], 2).await;
    let compacted = json!({"create_request": {"key": b64("foo"), "start_revision": "3"}});
    r.stream_once("watch compacted", "/v3/watch", &[compacted], 2).await;
    let future = json!({"create_request": {"key": b64("foo"), "start_revision": "100000"}});
    r.stream_once("watch future revision", "/v3/watch", &[future], 1).await;
    let two =
        [json!({"create_request": {"key": b64("q")}}), json!({"create_request": {"key": b64("q"), "watch_id": "7"}})];
    r.stream_once("watch two", "/v3/watch", &two, 2).await;

    let url = format!("{}/v3/watch", r.base);
    let mut conn = Stream::open(&r.client, &url, &json!({"create_request": {"key": b64("w")}})).await;
    conn.send(&json!({"create_request": {"key": b64("w"), "range_end": b64("x"), "prev_kv": true}})).await;
    conn.send(&json!({"create_request": {"key": b64("w"), "filters": ["NOPUT"]}})).await;
    conn.send(&json!({"create_request": {"key": b64("w"), "watch_id": "1"}})).await;
    let created = conn.lines(4).await;
    r.record_lines("watch stream created", created);
    r.post("watch stream put", "/v3/kv/put", json!({"key": b64("w"), "value": b64("1")})).await;
    r.post("watch stream put 2", "/v3/kv/put", json!({"key": b64("w2"), "value": b64("2")})).await;
    let events = conn.lines(3).await;
    r.record_lines("watch stream events", sort_by_watch(events));
    conn.send(&json!({"progress_request": {}})).await;
    let progress = conn.lines(1).await;
    r.record_lines("watch stream progress", progress);
    conn.send(&json!({"cancel_request": {"watch_id": "0"}})).await;
    conn.send(&json!({"cancel_request": {"watch_id": "42"}})).await;
    conn.send(&json!({})).await;
    let canceled = conn.lines(1).await;
    r.record_lines("watch stream cancel", canceled);
    r.post("watch stream delete", "/v3/kv/deleterange", json!({"key": b64("w")})).await;
    let events = conn.lines(2).await;
    r.record_lines("watch stream after cancel", sort_by_watch(events));

    // No deletes, and each put with the value it replaced; one step at a
    // time, so that both servers send one message per event.
    let create = json!({"create_request": {"key": b64("v"), "filters": ["NODELETE"], "prev_kv": true}});
    let mut conn = Stream::open(&r.client, &url, &create).await;
    let created = conn.lines(1).await;
    r.record_lines("watch nodelete created", created);
    for (step, body) in [
        ("put", json!({"key": b64("v"), "value": b64("1")})),
        ("overwrite", json!({"key": b64("v"), "value": b64("2")})),
    ] {
        r.post(&format!("watch nodelete {step}"), "/v3/kv/put", body).await;
        let event = conn.lines(1).await;
        r.record_lines(&format!("watch nodelete {step} event"), event);
    }
    r.post("watch nodelete delete", "/v3/kv/deleterange", json!({"key": b64("v")})).await;
    r.post("watch nodelete put again", "/v3/kv/put", json!({"key": b64("v"), "value": b64("3")})).await;
    let event = conn.lines(1).await;
    r.record_lines("watch nodelete after delete", event);
}

/// Lines of different watches may interleave in any order.
fn sort_by_watch(mut lines: Vec<Value>) -> Vec<Value> {
    lines.sort_by_key(|l| l["result"]["watch_id"].as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    lines
}

async fn cluster_sequence(r: &mut Recorder) {
    r.post("member list", "/v3/cluster/member/list", json!({})).await;
    // Nobody listens on port 1: the learner never starts, in both.
    let peer = "http://127.0.0.1:1";
    wait_out_etcd_startup(r).await;
    let added =
        r.post("member add learner", "/v3/cluster/member/add", json!({"peerURLs": [peer], "isLearner": true})).await;
    r.post("member add no urls", "/v3/cluster/member/add", json!({"peerURLs": []})).await;
    let id = added["member"]["ID"].as_str().unwrap_or("0").to_string();
    r.post("member promote learner", "/v3/cluster/member/promote", json!({"ID": id})).await;
    r.post("member promote unknown", "/v3/cluster/member/promote", json!({"ID": "1234"})).await;
    r.post("member remove learner", "/v3/cluster/member/remove", json!({"ID": id})).await;
    r.post("member remove unknown", "/v3/cluster/member/remove", json!({"ID": "1234"})).await;
    r.post("status", "/v3/maintenance/status", json!({})).await;
    r.get("version", "/version").await;
    r.get("get on a post route", "/v3/kv/range").await;
    r.post("unknown route", "/v3/kv/nope", json!({})).await;
    r.get("health", "/health").await;
}

/// etcd refuses membership changes ("unhealthy cluster", 503) until its
/// members have been connected for five seconds; a cluster replayed sooner
/// after its start waits that out here (Haven has no such delay).
async fn wait_out_etcd_startup(r: &Recorder) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let url = format!("{}/v3/cluster/member/add", r.base);
        let probe = json!({"peerURLs": ["http://127.0.0.1:2"], "isLearner": true}).to_string();
        let Ok(resp) = r.client.post(url).body(probe).send().await else { return };
        let (status, text) = (resp.status().as_u16(), resp.text().await.unwrap_or_default());
        if status != 503 || !text.contains("unhealthy cluster") {
            let id =
                serde_json::from_str::<Value>(&text).ok().and_then(|v| v["member"]["ID"].as_str().map(str::to_owned));
            if let Some(id) = id {
                let remove = json!({ "ID": id }).to_string();
                let _ = r.client.post(format!("{}/v3/cluster/member/remove", r.base)).body(remove).send().await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn replay(client: reqwest::Client, base: String) -> Vec<(String, Value)> {
    let mut r = Recorder { client, base, log: Vec::new() };
    kv_sequence(&mut r).await;
    error_sequence(&mut r).await;
    txn_sequence(&mut r).await;
    compaction_sequence(&mut r).await;
    watch_sequence(&mut r).await;
    lease_sequence(&mut r).await;
    lease_expiry_sequence(&mut r).await;
    cluster_sequence(&mut r).await;
    r.log
}

/// The etcd binary to compare with, or `None` (after saying how to get
/// one) when it is missing and HAVEN_REQUIRE_ETCD is not set.
pub fn etcd_or_skip() -> Option<PathBuf> {
    let binary = find_etcd();
    if binary.is_none() {
        let how = "etcd is not installed: `apt-get install -y etcd-server` (Debian) puts it at /usr/bin/etcd";
        assert!(std::env::var_os("HAVEN_REQUIRE_ETCD").is_none(), "HAVEN_REQUIRE_ETCD is set but {how}");
        eprintln!("SKIPPED the etcd comparison: {how}");
    }
    binary
}

/// Starts an etcd of `members` from `binary`, replays every sequence
/// against its first member and against `haven` (a URL of a Haven cluster
/// of as many members) at once, and fails listing every answer that differs.
pub async fn compare_with_etcd(binary: &Path, members: usize, haven: &str) {
    let started = Instant::now();
    let etcd = Etcd::start(binary, members);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("HTTP client");
    assert!(wait_healthy(&client, &etcd.url).await, "etcd did not become healthy; its log:\n{}", etcd.log());
    assert!(wait_healthy(&client, haven).await, "Haven at {haven} did not become healthy");

    eprintln!("etcd at {}, haven at {haven}", etcd.url);
    let (want, got) = tokio::join!(replay(client.clone(), etcd.url.clone()), replay(client, haven.to_owned()));
    let mut diffs = Vec::new();
    for ((name, etcd_answer), (_, haven_answer)) in want.iter().zip(&got) {
        if etcd_answer != haven_answer {
            diffs.push(format!("{name}:\n  etcd:  {etcd_answer}\n  haven: {haven_answer}"));
        }
    }
    assert_eq!(want.len(), got.len(), "both replays record the same number of answers");
    // A sequence that waits for more lines than etcd sends would compare
    // two timeouts and prove nothing.
    let short = want.iter().find(|(_, answer)| answer.get("missing").is_some());
    assert!(short.is_none(), "etcd sent fewer lines than the sequence waits for: {short:?}");
    eprintln!("compared {} answers with etcd in {:?}", want.len(), started.elapsed());
    if let Some(path) = std::env::var_os("HAVEN_COMPAT_DUMP") {
        let dump = |log: &[(String, Value)]| log.iter().map(|(n, v)| format!("{n}: {v}\n")).collect::<String>();
        let _ = std::fs::write(&path, format!("== etcd\n{}== haven\n{}", dump(&want), dump(&got)));
    }
    assert!(diffs.is_empty(), "{} answers differ from etcd's:\n{}", diffs.len(), diffs.join("\n"));
}
