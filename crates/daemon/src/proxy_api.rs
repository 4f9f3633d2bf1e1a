//! The proxies' endpoints, internal to Haven: `POST
//! /haven/v1/proxies/{proxy}/batch` and `GET /haven/v1/proxies/{proxy}/commands`,
//! served beside the agents' endpoints (this router includes them), and
//! `GET /haven/v1/agent-load`, how many requests agents and proxies made here.
//!
//! In: a proxy's [`ProxyBatch`] (its agents' leases to renew and their
//! reports), a proxy's poll for its agents' commands. Out: the leader's
//! [`BatchAnswer`] — at a follower, `NotLeader` with the leader's client
//! URL when this member knows it, so the proxy's next batch goes there —
//! and the pending commands of every node the graph assigns to the proxy,
//! from this member's applied state (any member may answer: commands are
//! in the graph only once their decision committed).
//!
//! Commands are fetched from any station, so the leader is not in the
//! command path at all: at once, or held until some step issues commands
//! (`?known=&wait_ms=`, as for an agent; see `agent_api.rs`), which pins
//! one request per proxy on a station. Bounds: a batch's
//! body is refused above `BATCH_BYTES_MAX`; the handle bounds the requests
//! waiting at once and how long each waits.

use crate::agent_api::{CommandsWait, commands_answer, failure};
use crate::handle::StationHandle;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_ha::{BatchAnswer, BatchOutcome, ProxyBatch};
use haven_runtime::NodeId;
use haven_station::CommandsOf;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest batch body taken, in bytes.
pub const BATCH_BYTES_MAX: usize = 8 << 20;

/// The leader's answer to a batch, with where the leader is when it was
/// not this member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub answer: BatchAnswer,
    pub leader_url: Option<String>,
}

/// Requests served here since start, by who made them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLoad {
    /// To `/haven/v1/agents/...`: agents talking to the stations.
    pub agent_requests: u64,
    /// To `/haven/v1/proxies/...`: proxies' batches and command polls.
    pub proxy_requests: u64,
}

#[derive(Debug, Default)]
struct Counters {
    agents: AtomicU64,
    proxies: AtomicU64,
}

/// The agents' and the proxies' endpoints, with the requests counted.
pub fn router(handle: StationHandle) -> Router {
    let counters = Arc::new(Counters::default());
    let proxies = Router::new()
        .route("/haven/v1/proxies/{proxy}/batch", post(batch))
        .route("/haven/v1/proxies/{proxy}/commands", get(commands))
        .layer(DefaultBodyLimit::max(BATCH_BYTES_MAX))
        .with_state(handle.clone());
    let counted = counters.clone();
    let load = Router::new().route("/haven/v1/agent-load", get(move || load(counted.clone())));
    crate::agent_api::router(handle)
        .merge(proxies)
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let counters = counters.clone();
            async move {
                let path = request.uri().path();
                if path.starts_with("/haven/v1/agents/") {
                    counters.agents.fetch_add(1, Ordering::Relaxed);
                } else if path.starts_with("/haven/v1/proxies/") {
                    counters.proxies.fetch_add(1, Ordering::Relaxed);
                }
                next.run(request).await
            }
        }))
        .merge(load)
}

async fn load(counters: Arc<Counters>) -> Json<AgentLoad> {
    Json(AgentLoad {
        agent_requests: counters.agents.load(Ordering::Relaxed),
        proxy_requests: counters.proxies.load(Ordering::Relaxed),
    })
}

async fn batch(State(handle): State<StationHandle>, Path(proxy): Path<u64>, Json(batch): Json<ProxyBatch>) -> Response {
    tracing::debug!(proxy, seq = batch.seq, leases = batch.leases.len(), reports = batch.reports.len(), "proxy batch");
    match handle.proxy_batch(NodeId(proxy), batch).await {
        Ok(answer) => {
            let leader_url = match &answer.outcome {
                BatchOutcome::NotLeader { leader_hint: Some(leader) } => handle.member_url(leader.0),
                _ => None,
            };
            Json(BatchReply { answer, leader_url }).into_response()
        }
        Err(e) => failure(&e),
    }
}

async fn commands(
    State(handle): State<StationHandle>,
    Path(proxy): Path<u64>,
    Query(wait): Query<CommandsWait>,
) -> Response {
    commands_answer(&handle, CommandsOf::Proxy(NodeId(proxy)), wait).await
}
