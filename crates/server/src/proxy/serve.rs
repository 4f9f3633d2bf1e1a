//! What a proxy serves its agents: the agents' paths of a station, so an
//! agent talks to a proxy as it would to a station —
//! `POST /haven/v1/agents/{node}/keepalive`, `POST .../reports`, `GET .../commands`.
//!
//! In: an agent's request. Out: a keep-alive answered once the batch that
//! carried it is answered by the leader (`404` when the lease is gone,
//! `409` when the stations assign the agent elsewhere: it asks them again,
//! `503` when this proxy is full or got no answer in time); reports `202`
//! once queued here (the agent repeats what still holds, so a report lost
//! with the proxy is sent again); commands from the last fetch from the
//! stations, at once or held until they change (as at a station). Joins, lease grants and proxy queries go to the stations.

use crate::proxy::Shared;
use crate::proxy::host::Inbox;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use haven_daemon::agent_api::{
    AgentKeepAliveAnswer, AgentKeepAliveBody, CommandsWait, REPORTS_LEN_MAX, held_until_changed,
};
use haven_ha::Event;
use haven_runtime::NodeId;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

#[derive(Clone, Debug)]
struct Served {
    inbox: mpsc::Sender<Inbox>,
    shared: Arc<Mutex<Shared>>,
    /// Notified when an agent's commands in `shared` change.
    changed: Arc<Notify>,
    /// The longest a keep-alive waits for its batch's answer.
    wait: Duration,
}

pub fn router(inbox: mpsc::Sender<Inbox>, shared: Arc<Mutex<Shared>>, changed: Arc<Notify>, wait: Duration) -> Router {
    Router::new()
        .route("/haven/v1/agents/{node}/keepalive", post(keep_alive))
        .route("/haven/v1/agents/{node}/reports", post(reports))
        .route("/haven/v1/agents/{node}/commands", get(commands))
        .with_state(Served { inbox, shared, changed, wait })
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

/// An agent's commands as last fetched from the stations: at once, or, with
/// `?known=&wait_ms=` (as at a station), once they no longer have digest
/// `known` or after the wait.
async fn commands(State(served): State<Served>, Path(node): Path<u64>, Query(wait): Query<CommandsWait>) -> Response {
    let node = NodeId(node);
    let current = || served.shared.lock().expect("never poisoned").commands.get(&node).cloned().unwrap_or_default();
    let Some((known, wait)) = wait.held() else { return Json(current()).into_response() };
    let deadline = tokio::time::Instant::now() + wait;
    let held =
        held_until_changed(&served.changed, known, deadline, || std::future::ready(Ok::<_, Infallible>(current())));
    let Ok(commands) = held.await;
    Json(commands).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_daemon::agent_api::commands_digest;
    use haven_ha::{Action, AgentCommand, CommandId, InstanceId};

    fn stop(node: u64) -> AgentCommand {
        let action = Action::Stop { service: "web".into(), timeout_ms: 1_000 };
        AgentCommand { id: CommandId(9), node: NodeId(node), session: 1, instance: InstanceId(3), action }
    }

    #[tokio::test]
    async fn a_held_fetch_is_answered_when_its_agents_commands_change_and_not_for_another_agents() {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let changed = Arc::new(Notify::new());
        let (inbox, _inbox_rx) = mpsc::channel(1);
        let app = router(inbox, shared.clone(), changed.clone(), Duration::from_secs(1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/haven/v1/agents/4/commands", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let none = commands_digest(&[]);
        let held = reqwest::get(format!("{url}?known={none}&wait_ms=20000"));
        tokio::pin!(held);
        assert!(tokio::time::timeout(Duration::from_millis(300), held.as_mut()).await.is_err(), "held");

        shared.lock().unwrap().commands.insert(NodeId(5), vec![stop(5)]);
        changed.notify_waiters();
        let other = tokio::time::timeout(Duration::from_millis(300), held.as_mut()).await;
        assert!(other.is_err(), "node 5's command leaves node 4's fetch held");

        shared.lock().unwrap().commands.insert(NodeId(4), vec![stop(4)]);
        changed.notify_waiters();
        let answered = tokio::time::timeout(Duration::from_secs(10), held).await.expect("answered once changed");
        let commands: Vec<AgentCommand> = answered.unwrap().json().await.unwrap();
        assert_eq!(commands, vec![stop(4)]);
        let at_once: Vec<AgentCommand> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(at_once, vec![stop(4)], "without a wait: at once");
    }
}
