//! What a proxy serves its agents: the agents' paths of a station, so an
//! agent talks to a proxy as it would to a station —
//! `POST /haven/v1/agents/{node}/keepalive`, `POST .../reports`, `GET .../commands`.
//!
//! In: an agent's request. Out: a keep-alive answered once the batch that
//! carried it is answered by the leader (`404` when the lease is gone,
//! `409` when the stations assign the agent elsewhere: it asks them again,
//! `503` when this proxy is full or got no answer in time); reports `202`
//! once queued here (the agent repeats what still holds, so a report lost
//! with the proxy is sent again); commands from the last poll of the
//! stations. Joins, lease grants and proxy queries go to the stations.

use crate::proxy::Shared;
use crate::proxy::host::Inbox;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use haven_daemon::agent_api::{AgentKeepAliveAnswer, AgentKeepAliveBody, REPORTS_LEN_MAX};
use haven_ha::Event;
use haven_runtime::NodeId;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Debug)]
struct Served {
    inbox: mpsc::Sender<Inbox>,
    shared: Arc<Mutex<Shared>>,
    /// The longest a keep-alive waits for its batch's answer.
    wait: Duration,
}

pub fn router(inbox: mpsc::Sender<Inbox>, shared: Arc<Mutex<Shared>>, wait: Duration) -> Router {
    Router::new()
        .route("/haven/v1/agents/{node}/keepalive", post(keep_alive))
        .route("/haven/v1/agents/{node}/reports", post(reports))
        .route("/haven/v1/agents/{node}/commands", get(commands))
        .with_state(Served { inbox, shared, wait })
}

fn full() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "this proxy is full: talk to the stations").into_response()
}

/// Tells an agent the stations moved it, once.
fn moved(served: &Served, agent: NodeId) -> Option<Response> {
    let told = served.shared.lock().expect("never poisoned").moved.remove(&agent);
    told.then(|| (StatusCode::CONFLICT, "assigned elsewhere: ask the stations for your proxy").into_response())
}

async fn keep_alive(
    State(served): State<Served>,
    Path(node): Path<u64>,
    Json(body): Json<AgentKeepAliveBody>,
) -> Response {
    let agent = NodeId(node);
    if let Some(response) = moved(&served, agent) {
        return response;
    }
    let (reply, answer) = oneshot::channel();
    if served.inbox.try_send(Inbox::KeepAlive { agent, lease: body.lease, reply }).is_err() {
        return full();
    }
    match tokio::time::timeout(served.wait, answer).await {
        Ok(Ok(Some(ttl))) => Json(AgentKeepAliveAnswer { ttl, moved: false }).into_response(),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, format!("lease {} is gone", body.lease)).into_response(),
        Ok(Err(_)) => moved(&served, agent).unwrap_or_else(full),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "no answer from the stations in time").into_response(),
    }
}

async fn reports(State(served): State<Served>, Path(node): Path<u64>, Json(events): Json<Vec<Event>>) -> Response {
    if events.len() > REPORTS_LEN_MAX {
        return (StatusCode::PAYLOAD_TOO_LARGE, format!("at most {REPORTS_LEN_MAX} reports a request")).into_response();
    }
    let count = events.len();
    match served.inbox.try_send(Inbox::Reports { agent: NodeId(node), events }) {
        Ok(()) => (StatusCode::ACCEPTED, Json(count)).into_response(),
        Err(_) => full(),
    }
}

async fn commands(State(served): State<Served>, Path(node): Path<u64>) -> Response {
    let shared = served.shared.lock().expect("never poisoned");
    Json(shared.commands.get(&NodeId(node)).cloned().unwrap_or_default()).into_response()
}
