//! The two streaming calls: `/v3/lease/keepalive` and `/v3/watch`.
//!
//! In: a request body carrying a sequence of JSON messages. Out: a response
//! body of JSON lines `{"result": ...}` as etcd's gateway frames them, or a
//! last line `{"error": {...}}` when the request stream is malformed (etcd
//! silently stops reading; saying why is kinder). Lines go through a
//! bounded queue: a client that does not read stalls its own producers.

use crate::backend::{Backend, BackendError};
use crate::body::MessageStream;
use crate::error::{GatewayError, StreamError};
use crate::json::{self, LeaseIdRequest, LeaseKeepAliveResponse, ResponseHeader, StreamResult};
use crate::router::Gateway;
use crate::watch_session::WatchSession;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use haven_store::StoreError;
use serde::Serialize;
use std::convert::Infallible;
use tokio::sync::mpsc;

/// One response line: `{"result": value}` and a newline.
pub(crate) fn result_line<T: Serialize>(value: T) -> Bytes {
    let mut out = serde_json::to_vec(&StreamResult { result: value }).expect("stream answers always serialize");
    out.push(b'\n');
    out.into()
}

/// The line grpc-gateway writes when a stream fails.
pub(crate) fn error_line(e: &GatewayError) -> Bytes {
    let mut out =
        serde_json::to_vec(&serde_json::json!({ "error": StreamError::from(e) })).expect("errors always serialize");
    out.push(b'\n');
    out.into()
}

/// A bounded queue of response lines, drained by [`streaming_response`].
pub(crate) fn line_channel(queue_len_max: usize) -> (mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
    mpsc::channel::<Bytes>(queue_len_max.max(1))
}

/// The streamed response, sent once its first line is ready. Like etcd's
/// gateway, the status line waits for the first message: a client that
/// sent `Expect: 100-continue` (curl does) gets its "100 Continue" when we
/// start reading the body, instead of a final response that makes it hold
/// the body back.
pub(crate) async fn streaming_response(mut lines: mpsc::Receiver<Bytes>) -> Response {
    let first = lines.recv().await;
    let rest = futures::stream::unfold(lines, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let all = futures::stream::iter(first).chain(rest).map(Ok::<_, Infallible>);
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(all)).into_response()
}

pub(crate) async fn keep_alive<B: Backend>(State(gw): State<Gateway<B>>, body: Body) -> Response {
    let (out, lines) = line_channel(gw.limits.stream_queue_len_max);
    let mut requests = MessageStream::new(body, gw.limits.body_bytes_max());
    tokio::spawn(async move {
        while let Some(next) = requests.next::<LeaseIdRequest>().await {
            let (line, fatal) = match next {
                Ok(req) => match keep_alive_one(&gw.backend, req.id).await {
                    Ok(resp) => (result_line(resp), false),
                    Err(e) => (error_line(&e), true),
                },
                Err(e) => (error_line(&e), true),
            };
            if out.send(line).await.is_err() || fatal {
                return;
            }
        }
    });
    streaming_response(lines).await
}

/// A renewal; an unknown or expired lease gets TTL 0, not an error, as in etcd.
async fn keep_alive_one<B: Backend>(backend: &B, id: i64) -> Result<LeaseKeepAliveResponse, GatewayError> {
    let ttl = match backend.keep_alive(id).await {
        Ok(ttl) => ttl,
        Err(BackendError::Store(StoreError::LeaseNotFound)) => 0,
        Err(e) => return Err(e.into()),
    };
    let header = ResponseHeader::new(&backend.identity(), backend.revision());
    Ok(json::LeaseKeepAliveResponse { header, id, ttl })
}

pub(crate) async fn watch<B: Backend>(State(gw): State<Gateway<B>>, body: Body) -> Response {
    let (out, lines) = line_channel(gw.limits.stream_queue_len_max);
    let requests = MessageStream::new(body, gw.limits.body_bytes_max());
    tokio::spawn(WatchSession::new(gw.backend, gw.limits, out).run(requests));
    streaming_response(lines).await
}
