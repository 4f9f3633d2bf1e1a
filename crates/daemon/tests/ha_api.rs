//! Haven's operator API (`/v1/`) on three real stations on loopback.
//!
//! In: a running cluster with no agent (so no node ever joins). Out:
//! checks that a service posted to one station is served by the others,
//! that bad definitions get 400 naming the field, that unknown nodes and
//! services get 404, that the coordinator's decision ("no eligible node")
//! shows in the event log and in a follower's stream, that every route the
//! OpenAPI document lists is served, that `/` leads to the dashboard and
//! the data it draws from answers, and that the CLI's `apply`, `service
//! ls|show` and `events` work against it.

mod common;

use common::{Cluster, WAIT_MAX, eventually};
use haven_client::cli::{OutputFormat, Printer};
use haven_client::{Client, ClientConfig};
use serde_json::{Value, json};

async fn call(cluster: &Cluster, id: u64, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", cluster.client_url(id));
    let mut request = cluster.http.request(method, url).timeout(WAIT_MAX);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the station answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(cluster: &Cluster, id: u64, path: &str) -> (u16, Value) {
    call(cluster, id, reqwest::Method::GET, path, None).await
}

async fn post(cluster: &Cluster, id: u64, path: &str, body: Value) -> (u16, Value) {
    call(cluster, id, reqwest::Method::POST, path, Some(body)).await
}

fn db() -> Value {
    json!({
        "name": "db",
        "command": "/usr/bin/db",
        "kind": "singleton",
        "placement": { "preferred": [4, 5] },
        "health": { "check": "tcp", "address": "127.0.0.1:5432" }
    })
}

/// Whether `events` holds a decision about `service` whose text contains `needle`.
fn decided(events: &Value, service: &str, needle: &str) -> bool {
    let all = events["events"].as_array().cloned().unwrap_or_default();
    all.iter().any(|e| e["service"] == service && e["text"].as_str().is_some_and(|t| t.contains(needle)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_posted_to_one_station_is_served_by_the_others_with_the_coordinators_decision() {
    let cluster = Cluster::start("ha-api", 3, 3_000);
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    let follower = cluster.follower_of(leader);
    let other = (1..=3).find(|&id| id != follower).unwrap();

    let (status, body) = post(&cluster, follower, "/v1/services", db()).await;
    assert_eq!(status, 202, "a follower forwards the action: {body}");
    assert!(body["event_id"].as_u64().is_some(), "{body}");

    eventually("another station serves db", || async { get(&cluster, other, "/v1/services/db").await.0 == 200 }).await;
    let (_, service) = get(&cluster, other, "/v1/services/db").await;
    assert_eq!(service["spec"]["placement"]["preferred"], json!([4, 5]), "{service}");
    assert_eq!(service["spec"]["health"]["address"], "127.0.0.1:5432", "{service}");
    assert_eq!(service["spec"]["restart"]["restarts_max"], 3, "defaults filled in: {service}");
    assert_eq!(service["spec"]["standbys"], 0, "{service}");

    eventually("the coordinator recorded why db cannot be placed", || async {
        let (status, events) = get(&cluster, other, "/v1/events?service=db").await;
        status == 200 && decided(&events, "db", "no eligible node")
    })
    .await;
    // Reads are served from each station's applied state: the follower may lag a moment.
    eventually("the follower applied the decision", || async {
        let (_, listed) = get(&cluster, follower, "/v1/services").await;
        listed["services"][0]["blocked"].as_str().is_some()
    })
    .await;
    let (_, listed) = get(&cluster, follower, "/v1/services").await;
    let blocked = listed["services"][0]["blocked"].as_str().unwrap_or_default();
    assert!(blocked.contains("no node has joined"), "{listed}");
    assert!(listed["version"].as_u64().is_some_and(|v| v > 0), "coordinator steps applied: {listed}");
    let (status, instances) = get(&cluster, other, "/v1/instances?service=db").await;
    assert_eq!((status, instances["instances"].as_array().map(Vec::len)), (200, Some(0)), "{instances}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_400_naming_the_field_and_unknown_names_get_404() {
    let cluster = Cluster::start("ha-api-errors", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;

    let slow_check = json!({ "name": "db", "command": "/x", "health": { "timeout_ms": 5000 } });
    let (status, body) = post(&cluster, 1, "/v1/services", slow_check).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("health.timeout_ms")), "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("health.timeout_ms:"), "{body}");
    let (status, body) = post(&cluster, 2, "/v1/services", json!({ "name": "db", "comand": "/x" })).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("comand")), "{body}");
    let standbys = json!({ "name": "db", "command": "/x", "standbys": 2 });
    let (status, body) = post(&cluster, 3, "/v1/services", standbys).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("promote")), "{body}");
    let (status, body) = post(&cluster, 1, "/v1/services?dry_run=true", db()).await;
    assert_eq!((status, &body["valid"]), (200, &json!(true)), "{body}");

    let (status, body) = post(&cluster, 1, "/v1/nodes/42/drain", json!({})).await;
    assert_eq!((status, body["field"].as_str()), (404, Some("id")), "{body}");
    let (status, body) = post(&cluster, 1, "/v1/nodes/x/undrain", json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(get(&cluster, 2, "/v1/services/nosuch").await.0, 404);
    assert_eq!(get(&cluster, 2, "/v1/instances?service=nosuch").await.0, 404);
    let (status, body) = call(&cluster, 3, reqwest::Method::DELETE, "/v1/services/nosuch", None).await;
    assert_eq!((status, body["field"].as_str()), (404, Some("name")), "{body}");
    let (status, _) = post(&cluster, 1, "/v1/services/nosuch/move", json!({ "to": 4 })).await;
    assert_eq!(status, 404);
    // dry_run queued nothing: db is unknown everywhere.
    assert_eq!(get(&cluster, 3, "/v1/services/db").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served_and_a_follower_of_events_sees_new_decisions() {
    let cluster = Cluster::start("ha-api-routes", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    let (status, doc) = get(&cluster, 1, "/v1/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{paths:?}");
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{name}", "nosuch").replace("{id}", "999");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let body = (method == reqwest::Method::POST).then(|| json!({}));
            let (status, answer) = call(&cluster, 2, method.clone(), &concrete, body).await;
            // The router's own 404/405 have no JSON body; every handler answers JSON.
            assert!(answer.is_object(), "{method} {concrete}: {status} {answer}");
            assert_ne!(status, 405, "{method} {concrete}");
        }
    }

    let url = format!("{}/v1/events?follow=true", cluster.client_url(3));
    let mut stream = cluster.http.get(url).send().await.expect("the stream opens");
    assert_eq!(stream.status(), 200);
    let (status, _) =
        post(&cluster, 1, "/v1/services", json!({ "name": "web", "command": "/w", "kind": "replicated", "count": 2 }))
            .await;
    assert_eq!(status, 202);
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    let mut lines: Vec<Value> = Vec::new();
    while !lines.iter().any(|l| l["service"] == "web") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("a decision about web in time");
        buf.extend_from_slice(&chunk.expect("the stream stays up").expect("the stream does not end"));
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            lines.push(serde_json::from_slice(&line).expect("one JSON object per line"));
        }
    }
    let web = lines.iter().find(|l| l["service"] == "web").unwrap();
    assert!(web["at_ms"].as_u64().is_some() && web["cause"].is_string(), "{web}");

    // The dashboard, from a follower: the page, the redirect to it, and the data it draws from.
    let root = cluster.http.get(cluster.client_url(2)).send().await.expect("the station answers /");
    assert_eq!(root.url().path(), "/dashboard", "/ leads to the dashboard");
    let content_type = root.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(root.text().await.unwrap().contains("<title>Haven</title>"));
    for path in ["/v1/nodes", "/v1/services", "/v1/events"] {
        let (status, answer) = get(&cluster, 2, path).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    for path in ["/v3/maintenance/status", "/v3/cluster/member/list"] {
        let (status, answer) = post(&cluster, 2, path, json!({})).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (_, services) = get(&cluster, 2, "/v1/services").await;
    assert!(services["services"].as_array().unwrap().iter().any(|s| s["name"] == "web"), "{services}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_applies_a_file_lists_shows_and_refuses_a_bad_file_whole() {
    let cluster = Cluster::start("ha-api-cli", 3, 3_000);
    cluster.wait_for_leader(&[1, 2, 3]).await;
    // One dead endpoint first: the CLI fails over.
    let endpoints = vec!["http://127.0.0.1:1".to_owned(), cluster.client_url(2), cluster.client_url(3)];
    let client = Client::new(ClientConfig { endpoints, ..ClientConfig::default() }).unwrap();
    let run = |text: &'static str| {
        let client = client.clone();
        async move {
            let defs = haven_client::ha::parse_services_toml(text).unwrap();
            let mut out = Vec::new();
            let result = haven_client::cli::apply::execute(
                &client,
                &defs,
                false,
                &mut Printer::new(OutputFormat::Table, &mut out),
            )
            .await;
            (result, String::from_utf8(out).unwrap())
        }
    };
    let bad = "[[service]]\nname = \"a\"\ncommand = \"/a\"\n[[service]]\nname = \"b\"\ncommand = \"/b\"\nkind = \"replicated\"\ncount = 0\n";
    let (result, _) = run(bad).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("service b: count: is 0"), "{error}");
    let good = "[[service]]\nname = \"a\"\ncommand = \"/a\"\n[[service]]\nname = \"b\"\ncommand = \"/b\"\nkind = \"replicated\"\ncount = 2\n";
    let (result, out) = run(good).await;
    result.unwrap();
    assert_eq!(out.lines().filter(|l| l.contains("queued as event")).count(), 2, "{out}");

    let ls = || async {
        let mut out = Vec::new();
        let command = haven_client::cli::service::ServiceCommand::Ls;
        haven_client::cli::service::execute(&client, command, &mut Printer::new(OutputFormat::Table, &mut out))
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    eventually("service ls shows both", || async { ls().await.lines().count() == 3 }).await;
    let table = ls().await;
    assert!(table.starts_with("NAME  KIND"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("b     replicated×2  -")), "{table}");

    let mut out = Vec::new();
    let show = haven_client::cli::service::ServiceCommand::Show { name: "b".into() };
    haven_client::cli::service::execute(&client, show, &mut Printer::new(OutputFormat::Table, &mut out)).await.unwrap();
    let shown = String::from_utf8(out).unwrap();
    let again = haven_client::ha::parse_services_toml(&shown).expect("show prints a table apply reads");
    assert_eq!((again[0].name.as_str(), again[0].count), ("b", Some(2)));

    let events = |service: &'static str| {
        let client = client.clone();
        async move {
            let mut out = Vec::new();
            let mut printer = Printer::new(OutputFormat::Table, &mut out);
            haven_client::cli::events::execute(&client, Some(service), &mut printer).await.unwrap();
            String::from_utf8(out).unwrap()
        }
    };
    eventually("events shows b added", || async { events("b").await.contains("added service b") }).await;
    let about_a = events("a").await;
    assert!(about_a.starts_with("TIME"), "{about_a}");
    assert_eq!(about_a.matches("added service a").count(), 1, "{about_a}");
    assert!(!about_a.contains("updated service a"), "the bad file queued nothing: {about_a}");
}
