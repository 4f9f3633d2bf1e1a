//! The daemon's own HTTP routes, beside the etcd API.
//!
//! In: `GET /metrics`, requests other members forward
//! (`POST /haven/v1/forward`, postcard), other members asking whether
//! they were removed (`GET /haven/v1/members/{id}/standing`), and
//! operators asking for a backup (`GET /haven/v1/snapshot`). Out:
//! Prometheus text, the local replica's answer, the member's standing in
//! this member's table, and the backup's bytes (or, from a member that
//! does not lead, 421 with the leader's URL as `leader`). (`/health` is the gateway's: 503 without a
//! leader.)

use crate::forward::{FORWARD_PATH, Forwarded, WAIT_HEADER};
use crate::handle::{BackupRefused, StationHandle};
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

/// Where operators fetch a backup (`haven snapshot save`).
pub const SNAPSHOT_PATH: &str = "/haven/v1/snapshot";
/// Headers of a backup: the log position it covers.
pub const SNAPSHOT_INDEX_HEADER: &str = "x-haven-snapshot-index";
pub const SNAPSHOT_TERM_HEADER: &str = "x-haven-snapshot-term";
/// How long a backup may take: the snapshot of a large store is written a
/// few keys per turn between the station's ordinary work.
const BACKUP_WAIT: Duration = Duration::from_secs(120);

/// Room a forwarded request's envelope takes beyond the client's request.
const FORWARD_OVERHEAD_BYTES: usize = 64 * 1024;

pub fn routes(handle: StationHandle, metrics: Arc<Metrics>, request_bytes_max: usize) -> Router {
    let forward_limit = DefaultBodyLimit::max(request_bytes_max + FORWARD_OVERHEAD_BYTES);
    Router::new()
        .route("/metrics", get(metrics_text))
        .route(FORWARD_PATH, post(forward).layer(forward_limit))
        .route(SNAPSHOT_PATH, get(snapshot))
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

async fn snapshot(State(shared): State<Shared>) -> Response {
    let error = |status: StatusCode, text: String, leader: Option<String>| {
        let body = serde_json::json!({ "error": text, "leader": leader });
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    };
    match shared.handle.backup(BACKUP_WAIT).await {
        Ok(image) => {
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::HeaderName::from_static(SNAPSHOT_INDEX_HEADER), image.index.to_string()),
                (header::HeaderName::from_static(SNAPSHOT_TERM_HEADER), image.term.to_string()),
            ];
            (headers, axum::body::Body::from(image.data)).into_response()
        }
        Err(BackupRefused::NotLeader { leader_url }) => {
            let text = "only the leader takes backups (its commit index covers every acknowledged write); ask it";
            error(StatusCode::MISDIRECTED_REQUEST, text.to_owned(), leader_url)
        }
        Err(BackupRefused::Backend(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e}; retry"), None),
        Err(BackupRefused::Unexpected(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e, None),
    }
}
