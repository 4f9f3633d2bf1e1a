//! The daemon's own HTTP routes, beside the etcd API.
//!
//! In: `GET /metrics`, requests other members forward
//! (`POST /haven/v1/forward`, postcard), and other members asking whether
//! they were removed (`GET /haven/v1/members/{id}/standing`). Out:
//! Prometheus text, the local replica's answer, and the member's standing
//! in this member's table. (`/health` is the gateway's: 503 without a
//! leader.)

use crate::forward::{FORWARD_PATH, Forwarded, WAIT_HEADER};
use crate::handle::StationHandle;
use crate::metrics::Metrics;
use crate::removal_probe::STANDING_PATH;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
struct Shared {
    handle: StationHandle,
    metrics: Arc<Metrics>,
}

/// Room a forwarded request's envelope takes beyond the client's request.
const FORWARD_OVERHEAD_BYTES: usize = 64 * 1024;

pub fn routes(handle: StationHandle, metrics: Arc<Metrics>, request_bytes_max: usize) -> Router {
    let forward_limit = DefaultBodyLimit::max(request_bytes_max + FORWARD_OVERHEAD_BYTES);
    Router::new()
        .route("/metrics", get(metrics_text))
        .route(FORWARD_PATH, post(forward).layer(forward_limit))
        .with_state(Shared { handle: handle.clone(), metrics })
        .merge(Router::new().route(STANDING_PATH, get(crate::removal_probe::standing)).with_state(handle))
}

async fn metrics_text(State(shared): State<Shared>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], shared.metrics.encode()).into_response()
}

async fn forward(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = postcard::from_bytes::<Forwarded>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a forwarded haven request").into_response();
    };
    let wait_ms = headers.get(WAIT_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let wait = Duration::from_millis(wait_ms.unwrap_or(u64::MAX));
    let answer = shared.handle.serve_forwarded(request, wait).await;
    let encoded = postcard::to_stdvec(&answer).expect("replica answers always encode");
    ([(header::CONTENT_TYPE, "application/octet-stream")], encoded).into_response()
}
