//! Haven's operator API under `/v1/`: nodes, services, instances and the
//! coordinator's decisions, as JSON (documented in `openapi.json`, served
//! at `/v1/openapi.json`).
//!
//! In: HTTP requests (untrusted bodies, paths and queries). Out: reads
//! from this station's applied HA state (serializable: any station answers,
//! with or without a leader, and may lag the leader by a moment); writes
//! queued through the leader as operator events, answered `202 Accepted`
//! with the event's id once queued (the coordinator acts on them within
//! moments and records what it did in `GET /v1/events`). Followers of the
//! event log share one view of the replica per poll interval. Errors are
//! `{"error": ..., "field": ...}` with 400 (bad input), 404 (unknown
//! service or node, as this station knows them), 413, 429 or 503 (no
//! leader, or no answer in time: retry, maybe at another station).

use crate::ha_json::{Invalid, event_view, instance_view, node_views, service_views, spec_of};
use crate::handle::StationHandle;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use haven_client::ha::{
    ApiError, Checked, EventList, InstanceList, MoveRequest, NodeList, Queued, ServiceDef, ServiceList,
};
use haven_gateway::BackendError;
use haven_ha::{Decision, OperatorAction, StateGraph};
use haven_runtime::NodeId;
use haven_station::HaView;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// The OpenAPI 3.0 description of every route below.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");
/// How often a follower of `/v1/events` looks at the replica's state.
const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// `GET /v1/events?follow=true` streams open at once; more get 429.
const FOLLOWERS_LEN_MAX: usize = 64;
/// Lines a follower's stream buffers before the poller waits for the reader.
const FOLLOW_QUEUE_LEN_MAX: usize = 256;
const QUEUED_NOTE: &str = "queued for the coordinator, which acts on it within moments; see GET /v1/events";

#[derive(Clone, Debug)]
struct Api {
    handle: StationHandle,
    followers: Arc<Semaphore>,
    body_bytes_max: usize,
}

type Handled = Result<Response, Failure>;

/// One route: method and path as documented, and its handler.
pub(crate) struct Route {
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "the handler carries the method; the OpenAPI test reads it here")
    )]
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<Api>,
}

fn route<H: Handler<T, Api>, T: 'static>(method: Method, path: &'static str, handler: H) -> Route {
    let filter = MethodFilter::try_from(method.clone()).expect("only standard methods are routed");
    Route { method, path, handler: MethodRouter::new().on(filter, handler) }
}

/// Every `/v1/` route; the router and the OpenAPI test both read this table.
pub(crate) fn routes_table() -> Vec<Route> {
    vec![
        route(Method::GET, "/v1/openapi.json", openapi),
        route(Method::GET, "/v1/nodes", list_nodes),
        route(Method::POST, "/v1/nodes/{id}/drain", drain),
        route(Method::POST, "/v1/nodes/{id}/undrain", undrain),
        route(Method::GET, "/v1/services", list_services),
        route(Method::POST, "/v1/services", add_service),
        route(Method::GET, "/v1/services/{name}", show_service),
        route(Method::DELETE, "/v1/services/{name}", remove_service),
        route(Method::POST, "/v1/services/{name}/enable", enable),
        route(Method::POST, "/v1/services/{name}/disable", disable),
        route(Method::POST, "/v1/services/{name}/move", move_service),
        route(Method::GET, "/v1/instances", list_instances),
        route(Method::GET, "/v1/events", events),
    ]
}

/// The `/v1/` routes over `handle`; bodies larger than `body_bytes_max` get 413.
pub fn router(handle: StationHandle, body_bytes_max: usize) -> Router {
    let followers = Arc::new(Semaphore::new(FOLLOWERS_LEN_MAX));
    let api = Api { handle, followers, body_bytes_max };
    let mut router = Router::new();
    for Route { path, handler, .. } in routes_table() {
        router = router.route(path, handler);
    }
    router.with_state(api)
}

/// Why a request failed, as the JSON error body and its status.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    body: ApiError,
}

impl Failure {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> Failure {
        Failure { status, body: ApiError { error: error.into(), field: field.map(str::to_owned) } }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        json(self.status, &self.body)
    }
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, invalid.message, invalid.field.as_deref())
    }
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Failure {
        let (status, text) = match error {
            BackendError::NoLeader => {
                (StatusCode::SERVICE_UNAVAILABLE, "no leader: is a majority of the stations running? retry")
            }
            BackendError::Timeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "no answer in time (no leader, or it is overloaded); retry")
            }
            BackendError::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "this station is busy; retry later"),
            BackendError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "this station's replica stopped; ask another"),
            other => return Failure::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string(), None),
        };
        Failure::new(status, text, None)
    }
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("API answers always serialize");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn queued(event_id: u64) -> Handled {
    Ok(json(StatusCode::ACCEPTED, &Queued { event_id, note: QUEUED_NOTE.to_owned() }))
}

/// Reads a JSON body of at most `bytes_max` bytes.
async fn parse_body<T: DeserializeOwned>(body: Body, bytes_max: usize) -> Result<T, Failure> {
    let bytes: Bytes = axum::body::to_bytes(body, bytes_max).await.map_err(|_| {
        Failure::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {bytes_max} bytes"), None)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let message = e.to_string();
        let field = field_in(&message);
        Failure::new(StatusCode::BAD_REQUEST, format!("the body is not a valid definition: {message}"), field)
    })
}

/// The field serde's message names (`unknown field `x``, `missing field `x``).
fn field_in(message: &str) -> Option<&str> {
    let rest = message.split_once("field `")?.1;
    rest.split_once('`').map(|(field, _)| field)
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Failure> {
    query.map(|Query(q)| q).map_err(|e| Failure::new(StatusCode::BAD_REQUEST, e.body_text(), None))
}

/// A node id as the path gives it: `4` or `n4`.
fn node_id(text: &str) -> Result<NodeId, Failure> {
    let digits = text.strip_prefix('n').unwrap_or(text);
    digits.parse().map(NodeId).map_err(|_| {
        Failure::new(StatusCode::BAD_REQUEST, format!("id: {text:?} is not a node id; write 4 or n4"), Some("id"))
    })
}

fn no_service(name: &str, field: &str) -> Failure {
    let text = format!("no service {name:?} at this station; see GET /v1/services");
    Failure::new(StatusCode::NOT_FOUND, text, Some(field))
}

fn no_node(id: NodeId, field: &str) -> Failure {
    Failure::new(StatusCode::NOT_FOUND, format!("no node {id} at this station; see GET /v1/nodes"), Some(field))
}

impl Api {
    async fn graph(&self) -> Result<HaView, Failure> {
        Ok(self.handle.ha_view().await?)
    }

    /// The latest view, shared by every follower (and the agents): fetched
    /// anew only when the shared one is older than the poll interval.
    async fn followed_view(&self) -> Result<Arc<HaView>, BackendError> {
        self.handle.recent_ha_view(FOLLOW_POLL_INTERVAL).await
    }

    /// Queues `action` once `known` holds for this station's graph.
    async fn act(&self, known: impl FnOnce(&StateGraph) -> Result<(), Failure>, action: OperatorAction) -> Handled {
        known(&self.graph().await?.graph)?;
        queued(self.handle.ha_request(action).await?)
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn list_nodes(State(api): State<Api>) -> Handled {
    let view = api.graph().await?;
    let list = NodeList { nodes: node_views(&view.graph), version: view.version, queue_len: view.queue_len };
    Ok(json(StatusCode::OK, &list))
}

async fn drain(State(api): State<Api>, Path(id): Path<String>) -> Handled {
    set_drained(api, &id, true).await
}

async fn undrain(State(api): State<Api>, Path(id): Path<String>) -> Handled {
    set_drained(api, &id, false).await
}

async fn set_drained(api: Api, id: &str, drained: bool) -> Handled {
    let node = node_id(id)?;
    let known = |g: &StateGraph| if g.nodes.contains_key(&node) { Ok(()) } else { Err(no_node(node, "id")) };
    let action = if drained { OperatorAction::Drain { node } } else { OperatorAction::Undrain { node } };
    api.act(known, action).await
}

async fn list_services(State(api): State<Api>) -> Handled {
    let view = api.graph().await?;
    let list =
        ServiceList { services: service_views(&view.graph, None), version: view.version, queue_len: view.queue_len };
    Ok(json(StatusCode::OK, &list))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddQuery {
    #[serde(default)]
    dry_run: bool,
}

/// Adds a service or replaces the definition of one (its running instances
/// keep the definition they were started with).
async fn add_service(State(api): State<Api>, q: Result<Query<AddQuery>, QueryRejection>, body: Body) -> Handled {
    let q = query(q)?;
    let def: ServiceDef = parse_body(body, api.body_bytes_max).await?;
    let spec = spec_of(&def)?;
    if q.dry_run {
        return Ok(json(StatusCode::OK, &Checked { name: def.name, valid: true }));
    }
    queued(api.handle.ha_request(OperatorAction::AddService(Box::new(spec))).await?)
}

async fn show_service(State(api): State<Api>, Path(name): Path<String>) -> Handled {
    let view = api.graph().await?;
    let found = service_views(&view.graph, Some(&name)).pop().ok_or_else(|| no_service(&name, "name"))?;
    Ok(json(StatusCode::OK, &found))
}

fn service_known(name: &str) -> impl FnOnce(&StateGraph) -> Result<(), Failure> + '_ {
    move |g| if g.services.contains_key(name) { Ok(()) } else { Err(no_service(name, "name")) }
}

async fn remove_service(State(api): State<Api>, Path(name): Path<String>) -> Handled {
    api.act(service_known(&name), OperatorAction::RemoveService { service: name.clone() }).await
}

async fn enable(State(api): State<Api>, Path(name): Path<String>) -> Handled {
    api.act(service_known(&name), OperatorAction::Enable { service: name.clone() }).await
}

async fn disable(State(api): State<Api>, Path(name): Path<String>) -> Handled {
    api.act(service_known(&name), OperatorAction::Disable { service: name.clone() }).await
}

/// Moves a singleton's primary to the node `{"to": id}` names.
async fn move_service(State(api): State<Api>, Path(name): Path<String>, body: Body) -> Handled {
    let MoveRequest { to } = parse_body(body, api.body_bytes_max).await?;
    let to = NodeId(to);
    let known = |g: &StateGraph| {
        let service = g.services.get(&name).ok_or_else(|| no_service(&name, "name"))?;
        if !service.spec.is_singleton() {
            let text = format!("only a singleton can be moved; {name} runs as many instances as it declares");
            return Err(Failure::new(StatusCode::BAD_REQUEST, text, Some("name")));
        }
        if g.nodes.contains_key(&to) { Ok(()) } else { Err(no_node(to, "to")) }
    };
    api.act(known, OperatorAction::Move { service: name.clone(), to }).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstancesQuery {
    service: Option<String>,
}

async fn list_instances(State(api): State<Api>, q: Result<Query<InstancesQuery>, QueryRejection>) -> Handled {
    let q = query(q)?;
    let view = api.graph().await?;
    let g = &view.graph;
    if let Some(name) = q.service.as_deref().filter(|name| !g.services.contains_key(*name)) {
        return Err(no_service(name, "service"));
    }
    let wanted = |service: &str| q.service.as_deref().is_none_or(|w| w == service);
    let instances = g.instances.values().filter(|i| wanted(&i.service)).map(instance_view).collect();
    Ok(json(StatusCode::OK, &InstanceList { instances, version: view.version, queue_len: view.queue_len }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    follow: bool,
    service: Option<String>,
}

/// The decision log, oldest first; with `follow=true`, newline-delimited
/// JSON: the log, then each new decision as this station applies it.
async fn events(State(api): State<Api>, q: Result<Query<EventsQuery>, QueryRejection>) -> Handled {
    let EventsQuery { follow, service } = query(q)?;
    let busy = |_| Failure::new(StatusCode::TOO_MANY_REQUESTS, "too many event followers here; retry later", None);
    let permit = if follow { Some(api.followers.clone().try_acquire_owned().map_err(busy)?) } else { None };
    let view = api.graph().await?;
    let Some(permit) = permit else {
        let events = view.graph.decisions.iter().filter(|d| concerns(d, service.as_deref())).map(event_view).collect();
        return Ok(json(StatusCode::OK, &EventList { events, version: view.version, queue_len: view.queue_len }));
    };
    let (tx, rx) = mpsc::channel::<Bytes>(FOLLOW_QUEUE_LEN_MAX);
    tokio::spawn(follow_events(api, view, service, tx, permit));
    let lines =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response())
}

fn concerns(d: &Decision, service: Option<&str>) -> bool {
    service.is_none_or(|s| d.service.as_deref() == Some(s))
}

fn line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut bytes = serde_json::to_vec(value).expect("API answers always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// Sends the decisions of `view`, then polls for new ones until the reader
/// goes away or the replica stops (a last `{"error": ...}` line says so).
async fn follow_events(
    api: Api,
    view: HaView,
    service: Option<String>,
    tx: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let mut seen: Vec<Decision> = view.graph.decisions.iter().cloned().collect();
    let mut fresh: Vec<Decision> = seen.clone();
    loop {
        for d in fresh.iter().filter(|d| concerns(d, service.as_deref())) {
            if tx.send(line(&event_view(d))).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_POLL_INTERVAL) => {}
            () = tx.closed() => return,
        }
        let view = match api.followed_view().await {
            Ok(view) => view,
            // A busy replica answers next time.
            Err(BackendError::Timeout | BackendError::TooManyRequests) => {
                fresh.clear();
                continue;
            }
            Err(error) => {
                let _ = tx.send(line(&Failure::from(error).body)).await;
                return;
            }
        };
        let now: Vec<Decision> = view.graph.decisions.iter().cloned().collect();
        fresh = new_since(&seen, &now).to_vec();
        seen = now;
    }
}

/// The decisions of `now` after those of `old`: the log only appends and
/// drops its oldest, so the longest tail of `old` that starts `now` marks
/// where the new ones begin (none shared: all are new).
fn new_since<'a>(old: &[Decision], now: &'a [Decision]) -> &'a [Decision] {
    let dropped = (0..=old.len()).find(|&o| now.starts_with(&old[o..])).unwrap_or(old.len());
    &now[(old.len() - dropped).min(now.len())..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn decision(n: u64) -> Decision {
        Decision { at_ms: n, service: None, text: format!("d{n}"), cause: "tick".into() }
    }

    fn log(range: std::ops::Range<u64>) -> Vec<Decision> {
        range.map(decision).collect()
    }

    #[test]
    fn new_decisions_are_found_also_when_the_oldest_were_dropped() {
        assert_eq!(new_since(&log(0..3), &log(0..5)), &log(3..5)[..]);
        assert_eq!(new_since(&log(0..3), &log(2..6)), &log(3..6)[..], "0 and 1 dropped");
        assert_eq!(new_since(&[], &log(0..2)), &log(0..2)[..]);
        assert_eq!(new_since(&log(0..3), &log(0..3)), &[] as &[Decision]);
        assert_eq!(new_since(&log(0..3), &log(7..9)), &log(7..9)[..], "nothing shared: all new");
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_is_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.0")), Some(true));
        let paths = doc["paths"].as_object().expect("paths");
        let methods = ["get", "post", "put", "delete", "patch"];
        let documented: BTreeSet<(String, String)> = paths
            .iter()
            .flat_map(|(path, ops)| {
                let ops = ops.as_object().expect("operations");
                ops.keys().filter(|m| methods.contains(&m.as_str())).map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> =
            routes_table().iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
        assert_eq!(served.len(), routes_table().len(), "no route twice");
        assert_eq!(documented, served);
        for (path, ops) in paths {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} responses");
            }
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 10, "the document uses its schemas: {refs:?}");
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("local references only");
            assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
        }
    }

    fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                    refs.push(r.to_owned());
                }
                map.values().for_each(|v| collect_refs(v, refs));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
            _ => {}
        }
    }

    #[test]
    fn serde_messages_give_the_field_and_node_ids_read_both_ways() {
        assert_eq!(field_in("unknown field `comand`, expected one of `name`"), Some("comand"));
        assert_eq!(field_in("missing field `command` at line 1 column 13"), Some("command"));
        assert_eq!(field_in("expected value at line 1 column 1"), None);
        assert_eq!(node_id("n4").unwrap(), NodeId(4));
        assert_eq!(node_id("4").unwrap(), NodeId(4));
        assert_eq!(node_id("x4").unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
