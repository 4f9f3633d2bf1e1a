//! The agents' endpoints, internal to Haven (like the forwarding path):
//! `POST /haven/v1/leases` (a lease in milliseconds, for a node),
//! `POST /haven/v1/agents/{node}/join`, `POST .../keepalive`,
//! `POST .../reports`, `GET .../commands` and `GET .../proxy`. A `haven
//! proxy` serves its agents the keep-alive, report and command endpoints
//! under the same paths, so an agent talks to either the same way.
//!
//! In: a lease grant in ms (answered with its id and granted TTL); an
//! agent's join (its address, labels and the store lease it keeps
//! alive), its keep-alives of that lease, its reports (the observations of
//! `haven_ha::Event`, as JSON), and its polls. Out: `202` once queued
//! through the leader (with the event's id, or the number of reports); the
//! lease's TTL once the leader renewed it (`404` when the lease is gone);
//! the node's pending commands (at once, or once they differ from what the
//! agent holds: see [`CommandsWait`]), or the proxy it should report through
//! (`{"proxy": id, "url": ...}`, both null for none), from this station's
//! applied state; `503` when no leader answered in time (the agent retries,
//! maybe elsewhere), `400` for a body that does not parse.

use crate::handle::StationHandle;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_gateway::{Backend, BackendError};
use haven_ha::{AgentCommand, Event};
use haven_runtime::NodeId;
use haven_station::{CommandsOf, HaReport};
use haven_store::{LeaseGrantMsRequest, Request, Response as StoreResponse, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reports one request may carry; the agent sends the rest next time.
pub const REPORTS_LEN_MAX: usize = 256;

pub use haven_ha::PROXY_URL_LABEL;

/// A proxy an agent is assigned to, with where to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyPlace {
    pub proxy: NodeId,
    /// `None` when the proxy joined without a URL (an agent labelled a
    /// proxy by hand): its agents talk to the stations.
    pub url: Option<String>,
}

/// A keep-alive of the lease an agent joined with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeepAliveBody {
    pub lease: i64,
}

/// A renewed lease's TTL in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeepAliveAnswer {
    pub ttl: i64,
    /// Set by a proxy when the stations assign this agent elsewhere: ask
    /// the stations for its proxy again.
    #[serde(default)]
    pub moved: bool,
}

/// The proxy an agent is assigned to and its URL; both `None` for none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProxyAnswer {
    pub proxy: Option<u64>,
    pub url: Option<String>,
}

/// An agent's join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJoin {
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The store lease (etcd lease id) whose expiry makes the node dead.
    pub lease: i64,
}

/// `POST /haven/v1/leases`: a lease counted in milliseconds. etcd's API
/// grants whole seconds; a node lease under a second is what lets a dead
/// node's singleton move in under a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantMsBody {
    pub ttl_ms: u64,
}

/// The granted lease: raised to the stations' minimum, if below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantMsAnswer {
    pub id: i64,
    pub ttl_ms: u64,
}

/// The longest lease `POST /haven/v1/leases` grants, in ms: a day. Longer
/// leases are etcd's business (`/v3/lease/grant`, in seconds).
pub const LEASE_TTL_MS_MAX: u64 = 86_400_000;

pub fn router(handle: StationHandle) -> Router {
    Router::new()
        .route("/haven/v1/leases", post(grant_lease))
        .route("/haven/v1/agents/{node}/join", post(join))
        .route("/haven/v1/agents/{node}/keepalive", post(keep_alive))
        .route("/haven/v1/agents/{node}/reports", post(reports))
        .route("/haven/v1/agents/{node}/commands", get(commands))
        .route("/haven/v1/agents/{node}/proxy", get(proxy))
        .with_state(handle)
}

pub(crate) fn failure(error: &BackendError) -> Response {
    let status = match error {
        BackendError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, error.to_string()).into_response()
}

async fn grant_lease(State(handle): State<StationHandle>, Json(body): Json<LeaseGrantMsBody>) -> Response {
    if body.ttl_ms == 0 || body.ttl_ms > LEASE_TTL_MS_MAX {
        let text = format!("ttl_ms: between 1 and {LEASE_TTL_MS_MAX} (a day); got {}", body.ttl_ms);
        return (StatusCode::BAD_REQUEST, text).into_response();
    }
    let grant = Request::LeaseGrantMs(LeaseGrantMsRequest { ttl_ms: body.ttl_ms, id: 0 });
    match handle.request(grant, false).await {
        Ok(StoreResponse::LeaseGrantMs(g)) => Json(LeaseGrantMsAnswer { id: g.id, ttl_ms: g.ttl_ms }).into_response(),
        Ok(other) => {
            tracing::error!(?other, "a millisecond lease grant got another answer");
            (StatusCode::INTERNAL_SERVER_ERROR, "the grant got an answer of another kind").into_response()
        }
        Err(e) => failure(&e),
    }
}

async fn join(State(handle): State<StationHandle>, Path(node): Path<u64>, Json(join): Json<AgentJoin>) -> Response {
    if join.lease <= 0 {
        return (StatusCode::BAD_REQUEST, "lease: a positive etcd lease id").into_response();
    }
    let report = HaReport::Join { node: NodeId(node), address: join.address, labels: join.labels, lease: join.lease };
    match handle.ha_report(report).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(id)).into_response(),
        Err(e) => failure(&e),
    }
}

async fn reports(
    State(handle): State<StationHandle>,
    Path(node): Path<u64>,
    Json(events): Json<Vec<Event>>,
) -> Response {
    if events.len() > REPORTS_LEN_MAX {
        return (StatusCode::PAYLOAD_TOO_LARGE, format!("at most {REPORTS_LEN_MAX} reports a request")).into_response();
    }
    tracing::debug!(node, reports = events.len(), "agent reports");
    let count = events.len();
    for event in events {
        if let Err(e) = handle.ha_report(HaReport::Event(event)).await {
            return failure(&e);
        }
    }
    (StatusCode::ACCEPTED, Json(count)).into_response()
}

/// `GET .../commands?known=D&wait_ms=W`: wait up to `W` ms (at most
/// [`COMMANDS_WAIT_MS_MAX`]) while the node's commands still have digest
/// `D`; without them, answer at once.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct CommandsWait {
    #[serde(default)]
    pub known: Option<u32>,
    #[serde(default)]
    pub wait_ms: u64,
}

/// The longest a command fetch may wait for a change.
pub const COMMANDS_WAIT_MS_MAX: u64 = 30_000;

impl CommandsWait {
    /// The digest to wait past and for how long (at most
    /// [`COMMANDS_WAIT_MS_MAX`]), or `None` for an answer at once.
    pub fn held(self) -> Option<(u32, std::time::Duration)> {
        let known = self.known.filter(|_| self.wait_ms > 0)?;
        Some((known, std::time::Duration::from_millis(self.wait_ms.min(COMMANDS_WAIT_MS_MAX))))
    }
}

/// `path` with the query that asks for a hold (see [`CommandsWait`]), or
/// `path` itself when `wait` is zero.
pub fn held_path(path: &str, known: u32, wait: std::time::Duration) -> String {
    match wait.as_millis() {
        0 => path.to_owned(),
        wait_ms => format!("{path}?known={known}&wait_ms={wait_ms}"),
    }
}

/// Holds a question for commands: reads them with `current` (after
/// enabling a wait on `bell`, so a ring in between is not missed) and
/// answers once their digest is not `known`, or at `deadline` with what
/// there is. Station and proxy hold their questions the same way.
pub async fn held_until_changed<E, F>(
    bell: &tokio::sync::Notify,
    known: u32,
    deadline: tokio::time::Instant,
    mut current: impl FnMut() -> F,
) -> Result<Vec<AgentCommand>, E>
where
    F: Future<Output = Result<Vec<AgentCommand>, E>>,
{
    loop {
        let rung = bell.notified();
        tokio::pin!(rung);
        rung.as_mut().enable();
        let commands = current().await?;
        if commands_digest(&commands) != known || tokio::time::timeout_at(deadline, rung).await.is_err() {
            return Ok(commands);
        }
    }
}

/// What identifies a list of commands, for [`CommandsWait::known`]: the
/// crc32c of each command's id, node, session and instance, in order. A
/// command is never changed under its id, so equal lists digest equally.
pub fn commands_digest(commands: &[AgentCommand]) -> u32 {
    commands.iter().fold(0, |crc, c| {
        let fields =
            [c.id.0.to_le_bytes(), c.node.0.to_le_bytes(), c.session.to_le_bytes(), c.instance.0.to_le_bytes()];
        fields.iter().fold(crc, |crc, f| crc32c::crc32c_append(crc, f))
    })
}

async fn commands(
    State(handle): State<StationHandle>,
    Path(node): Path<u64>,
    Query(wait): Query<CommandsWait>,
) -> Response {
    commands_answer(&handle, CommandsOf::Node(NodeId(node)), wait).await
}

/// The commands of a node or a proxy, at once or once changed (`wait`).
pub(crate) async fn commands_answer(handle: &StationHandle, of: CommandsOf, wait: CommandsWait) -> Response {
    let answer = match wait.held() {
        Some((known, wait)) => handle.commands_changed(of, known, wait).await,
        None => handle.commands_of(of).await,
    };
    match answer {
        Ok(commands) => Json(commands).into_response(),
        Err(e) => failure(&e),
    }
}

async fn keep_alive(State(handle): State<StationHandle>, Json(body): Json<AgentKeepAliveBody>) -> Response {
    match handle.keep_alive(body.lease).await {
        Ok(ttl) if ttl > 0 => Json(AgentKeepAliveAnswer { ttl, moved: false }).into_response(),
        Ok(_) | Err(BackendError::Store(StoreError::LeaseNotFound)) => {
            (StatusCode::NOT_FOUND, format!("lease {} is gone", body.lease)).into_response()
        }
        Err(e) => failure(&e),
    }
}

async fn proxy(State(handle): State<StationHandle>, Path(node): Path<u64>) -> Response {
    match handle.agent_proxy(NodeId(node)).await {
        Ok(place) => {
            let answer = place
                .map_or_else(AgentProxyAnswer::default, |p| AgentProxyAnswer { proxy: Some(p.proxy.0), url: p.url });
            Json(answer).into_response()
        }
        Err(e) => failure(&e),
    }
}
