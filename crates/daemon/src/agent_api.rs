//! The agents' endpoints, internal to Haven (like the forwarding path):
//! `POST /haven/v1/agents/{node}/join`, `POST /haven/v1/agents/{node}/reports`
//! and `GET /haven/v1/agents/{node}/commands`.
//!
//! In: an agent's join (its address, labels and the store lease it keeps
//! alive through the etcd API), its reports (the observations of
//! `haven_ha::Event`, as JSON), and its polls. Out: `202` once queued
//! through the leader (with the event's id, or the number of reports), or the node's pending commands from this station's
//! applied state; `503` when no leader queued it in time (the agent
//! retries, maybe elsewhere), `400` for a body that does not parse.

use crate::handle::StationHandle;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_gateway::BackendError;
use haven_ha::Event;
use haven_runtime::NodeId;
use haven_station::HaReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Reports one request may carry; the agent sends the rest next time.
pub const REPORTS_LEN_MAX: usize = 256;

/// An agent's join.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentJoin {
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The store lease (etcd lease id) whose expiry makes the node dead.
    pub lease: i64,
}

pub fn router(handle: StationHandle) -> Router {
    Router::new()
        .route("/haven/v1/agents/{node}/join", post(join))
        .route("/haven/v1/agents/{node}/reports", post(reports))
        .route("/haven/v1/agents/{node}/commands", get(commands))
        .with_state(handle)
}

fn failure(error: &BackendError) -> Response {
    let status = match error {
        BackendError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, error.to_string()).into_response()
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

async fn commands(State(handle): State<StationHandle>, Path(node): Path<u64>) -> Response {
    match handle.agent_commands(NodeId(node)).await {
        Ok(commands) => Json(commands).into_response(),
        Err(e) => failure(&e),
    }
}
