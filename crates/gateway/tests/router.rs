//! The router over `MemoryBackend`, driven in-process through tower's
//! `oneshot`: unary calls, error mapping, the body limit (an endless body
//! must be refused, not buffered), streamed watches and keep-alives with
//! their bounds, and lease expiry on tokio's paused clock.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use haven_gateway::{GatewayLimits, MemoryBackend, router};
use haven_store::StoreConfig;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;
use tower::ServiceExt;

fn app(limits: GatewayLimits) -> Router {
    router(MemoryBackend::new(StoreConfig::default(), vec!["http://127.0.0.1:2379".into()]), limits)
}

async fn call(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(path).body(Body::from(body.to_string())).expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn put_then_range_returns_the_value_at_the_new_revision() {
    let app = app(GatewayLimits::default());
    let (status, put) = call(&app, "/v3/kv/put", json!({"key": "Zm9v", "value": "YmFy"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(put["header"]["revision"], "2");
    let (_, range) = call(&app, "/v3/kv/range", json!({"key": "Zm9v"})).await;
    assert_eq!(range["kvs"][0]["value"], "YmFy");
    assert_eq!(range["count"], "1");
    assert_eq!(range["header"]["member_id"], haven_gateway::memory::MEMORY_MEMBER_ID.to_string());
}

#[tokio::test]
async fn errors_carry_etcds_body_code_and_status() {
    let app = app(GatewayLimits::default());
    let (status, body) = call(&app, "/v3/kv/range", json!({})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!(3)));
    assert_eq!(body["error"], "etcdserver: key is not provided");
    assert_eq!(body["error"], body["message"]);
    let (status, body) = call(&app, "/v3/lease/revoke", json!({"ID": "5"})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::NOT_FOUND, json!(5)));
    let (status, body) = call(&app, "/v3/kv/range", json!({"key": "Zm9v", "revision": "9"})).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!(11)));
    let (status, _) = call(&app, "/v3/cluster/member/remove", json!({"ID": "77"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let get = Request::get("/v3/kv/range").body(Body::empty()).expect("request");
    assert_eq!(app.clone().oneshot(get).await.expect("infallible").status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_endless_body_is_refused_without_being_buffered() {
    let limits = GatewayLimits { request_bytes_max: 1_000, ..GatewayLimits::default() };
    let app = app(limits.clone());
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let endless = futures::stream::repeat(chunk).map(Ok::<_, std::io::Error>);
    let req = Request::post("/v3/kv/put").body(Body::from_stream(endless)).expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(5), app.clone().oneshot(req)).await;
    let resp = resp.expect("refused promptly").expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.expect("body");
    assert!(String::from_utf8_lossy(&body).contains("etcdserver: request is too large"));

    let declared = (limits.body_bytes_max() + 1).to_string();
    let req = Request::post("/v3/kv/put").header("content-length", declared).body(Body::empty()).expect("request");
    assert_eq!(app.oneshot(req).await.expect("infallible").status(), StatusCode::BAD_REQUEST);
}

/// A streaming call: messages go up through `up`, lines come down.
struct Stream {
    up: mpsc::Sender<Result<Bytes, std::io::Error>>,
    down: axum::body::BodyDataStream,
    buf: Vec<u8>,
}

impl Stream {
    async fn open(app: &Router, path: &str, first: Value) -> Stream {
        let (up, rx) = mpsc::channel(16);
        let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        let req = Request::post(path).body(Body::from_stream(body)).expect("request");
        let pending = tokio::spawn(app.clone().oneshot(req));
        up.send(Ok(Bytes::from(format!("{first}\n")))).await.expect("open body");
        let resp = pending.await.expect("task").expect("infallible");
        Stream { up, down: resp.into_body().into_data_stream(), buf: Vec::new() }
    }

    async fn send(&self, v: Value) {
        self.up.send(Ok(Bytes::from(format!("{v}\n")))).await.expect("open body");
    }

    async fn line(&mut self) -> Value {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return serde_json::from_slice(&line).expect("a JSON line");
            }
            let next = tokio::time::timeout(Duration::from_secs(5), self.down.next()).await;
            let chunk = next.expect("a line in time").expect("stream open").expect("no body error");
            self.buf.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test]
async fn a_watch_from_an_old_revision_replays_history_split_into_bounded_lines() {
    let limits = GatewayLimits { events_per_line_len_max: 2, ..GatewayLimits::default() };
    let app = app(limits);
    for v in ["MQ==", "Mg==", "Mw=="] {
        call(&app, "/v3/kv/put", json!({"key": "aw==", "value": v})).await;
    }
    let create = json!({"create_request": {"key": "aw==", "start_revision": "2", "prev_kv": true}});
    let mut w = Stream::open(&app, "/v3/watch", create).await;
    assert_eq!(w.line().await["result"]["created"], true);
    let first = w.line().await;
    let second = w.line().await;
    let events: Vec<&Value> =
        [&first, &second].iter().flat_map(|l| l["result"]["events"].as_array().expect("events")).collect();
    assert_eq!(first["result"]["events"].as_array().map(Vec::len), Some(2), "at most 2 events a line");
    let mods: Vec<&str> = events.iter().map(|e| e["kv"]["mod_revision"].as_str().expect("revision")).collect();
    assert_eq!(mods, ["2", "3", "4"]);
    assert_eq!(events[2]["prev_kv"]["value"], "Mg==");
    assert!(events[0].get("prev_kv").is_none(), "the first put had nothing before it");
}

#[tokio::test]
async fn a_connection_holds_a_bounded_number_of_watches_and_cancel_frees_one() {
    let limits = GatewayLimits { watches_per_connection_len_max: 1, ..GatewayLimits::default() };
    let app = app(limits);
    let mut w = Stream::open(&app, "/v3/watch", json!({"create_request": {"key": "YQ=="}})).await;
    assert_eq!(w.line().await["result"]["created"], true);
    w.send(json!({"create_request": {"key": "Yg=="}})).await;
    let refused = w.line().await;
    assert_eq!(
        (refused["result"]["canceled"].clone(), refused["result"]["watch_id"].clone()),
        (json!(true), json!("-1"))
    );
    assert!(refused["result"]["cancel_reason"].as_str().is_some_and(|r| r.contains("at most 1")));
    w.send(json!({"cancel_request": {"watch_id": 0}})).await;
    assert_eq!(w.line().await["result"]["canceled"], true);
    w.send(json!({"create_request": {"key": "Yg=="}})).await;
    let again = w.line().await;
    assert_eq!((again["result"]["created"].clone(), again["result"]["watch_id"].clone()), (json!(true), json!("1")));
    assert!(again["result"].get("canceled").is_none());
}

#[tokio::test]
async fn a_malformed_message_ends_the_watch_stream_with_an_error_line() {
    let app = app(GatewayLimits::default());
    let mut w = Stream::open(&app, "/v3/watch", json!({"create_request": {"key": "YQ=="}})).await;
    w.line().await;
    w.up.send(Ok(Bytes::from_static(b"{oops}\n"))).await.expect("open body");
    let err = w.line().await;
    assert_eq!(err["error"]["grpc_code"], 3);
    assert_eq!(err["error"]["http_code"], 400);
}

#[tokio::test(start_paused = true)]
async fn a_lease_left_alone_expires_its_keys_are_deleted_and_watchers_see_it() {
    let app = app(GatewayLimits::default());
    let (_, grant) = call(&app, "/v3/lease/grant", json!({"TTL": 2, "ID": 7})).await;
    assert_eq!(grant["TTL"], "2");
    call(&app, "/v3/kv/put", json!({"key": "bA==", "value": "dg==", "lease": 7})).await;
    let mut w = Stream::open(&app, "/v3/watch", json!({"create_request": {"key": "bA=="}})).await;
    w.line().await;
    let mut ka = Stream::open(&app, "/v3/lease/keepalive", json!({"ID": "7"})).await;
    assert_eq!(ka.line().await["result"]["TTL"], "2");

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, ttl) = call(&app, "/v3/lease/timetolive", json!({"ID": "7"})).await;
    assert!(ttl.get("TTL").is_none(), "0 whole seconds left (truncated), and 0 is omitted: {ttl}");
    assert_eq!(ttl["grantedTTL"], "2");
    assert_eq!(call(&app, "/v3/kv/range", json!({"key": "bA=="})).await.1["count"], "1", "not expired yet");

    tokio::time::sleep(Duration::from_secs(1)).await;
    let deleted = w.line().await;
    assert_eq!(deleted["result"]["events"][0]["type"], "DELETE");
    assert!(call(&app, "/v3/kv/range", json!({"key": "bA=="})).await.1.get("count").is_none());
    let (_, ttl) = call(&app, "/v3/lease/timetolive", json!({"ID": "7"})).await;
    assert_eq!(ttl["TTL"], "-1");
    ka.send(json!({"ID": "7"})).await;
    assert!(ka.line().await["result"].get("TTL").is_none(), "an expired lease renews to TTL 0");
}

#[tokio::test]
async fn health_version_members_and_status_answer() {
    let app = app(GatewayLimits::default());
    let get = |path: &str| Request::get(path).body(Body::empty()).expect("request");
    let health = app.clone().oneshot(get("/health")).await.expect("infallible");
    assert_eq!(health.status(), StatusCode::OK);
    let version = app.clone().oneshot(get("/version")).await.expect("infallible");
    let body = axum::body::to_bytes(version.into_body(), 1024).await.expect("body");
    assert_eq!(&body[..], br#"{"etcdserver":"3.4.0","etcdcluster":"3.4.0"}"#);
    let (_, added) =
        call(&app, "/v3/cluster/member/add", json!({"peerURLs": ["http://10.0.0.9:2380"], "isLearner": true})).await;
    assert_eq!(added["members"].as_array().map(Vec::len), Some(2));
    let (status, dup) = call(&app, "/v3/cluster/member/add", json!({"peerURLs": ["http://10.0.0.9:2380"]})).await;
    assert_eq!((status, dup["code"].clone()), (StatusCode::PRECONDITION_FAILED, json!(9)));
    let (status, _) = call(&app, "/v3/cluster/member/add", json!({"peerURLs": ["10.0.0.9:2380"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a URL needs its scheme");
    let (_, status) = call(&app, "/v3/maintenance/status", json!({})).await;
    assert_eq!(status["leader"], status["header"]["member_id"]);
    assert_eq!(status["version"], "3.4.0");
}
