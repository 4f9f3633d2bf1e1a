//! One open watch's output: the backend's updates, as response lines.
//!
//! In: the watch's update channel from the backend, its filters, the
//! connection's line queue. Out: event lines (filtered, at most
//! `events_per_line_len_max` events each), progress lines when asked and
//! idle, and a last `canceled` line when the history is compacted or the
//! backend closes the watch. It stops quietly when the client is gone.

use crate::backend::{Backend, WatchUpdate};
use crate::json::{self, WatchResponse};
use crate::limits::GatewayLimits;
use crate::stream::result_line;
use crate::watch_session::{Alive, header};
use axum::body::Bytes;
use haven_store::{Event, EventKind};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// Carries one watch's updates from the backend to the connection.
#[derive(Debug)]
pub(crate) struct Forwarder<B> {
    pub(crate) backend: B,
    pub(crate) limits: Arc<GatewayLimits>,
    pub(crate) out: mpsc::Sender<Bytes>,
    pub(crate) id: i64,
    pub(crate) no_put: bool,
    pub(crate) no_delete: bool,
    pub(crate) progress_notify: bool,
}

impl<B: Backend> Forwarder<B> {
    pub(crate) async fn run(self, mut updates: mpsc::Receiver<WatchUpdate>) {
        let mut quiet_until = Instant::now() + self.limits.progress_interval;
        loop {
            let update = tokio::select! {
                _ = self.out.closed() => return,
                update = updates.recv() => update,
                _ = sleep_until(quiet_until), if self.progress_notify => {
                    if !self.send(self.response(self.backend.revision())).await {
                        return;
                    }
                    quiet_until = Instant::now() + self.limits.progress_interval;
                    continue;
                }
            };
            let last = match update {
                Some(WatchUpdate::Events(events)) => {
                    if !self.events(events).await {
                        return;
                    }
                    quiet_until = Instant::now() + self.limits.progress_interval;
                    continue;
                }
                // etcd's compaction notice carries no revision in its header.
                Some(WatchUpdate::Compacted { compact_revision }) => WatchResponse {
                    canceled: true,
                    compact_revision: json::wire_i64(compact_revision),
                    ..self.response(0)
                },
                Some(WatchUpdate::Closed { reason }) => {
                    WatchResponse { canceled: true, cancel_reason: reason, ..self.response(self.backend.revision()) }
                }
                None => WatchResponse {
                    canceled: true,
                    cancel_reason: "the server closed this watch (it fell behind, or its member stopped): \
                                    watch again from the revision after the last event received"
                        .to_string(),
                    ..self.response(self.backend.revision())
                },
            };
            let _ = self.send(last).await;
            return;
        }
    }

    fn response(&self, revision: u64) -> WatchResponse {
        WatchResponse { header: header(&self.backend, revision), watch_id: self.id, ..WatchResponse::default() }
    }

    async fn send(&self, resp: WatchResponse) -> Alive {
        self.out.send(result_line(resp)).await.is_ok()
    }

    async fn events(&self, events: Vec<Event>) -> Alive {
        let kept: Vec<&Event> = events
            .iter()
            .filter(|e| match e.kind {
                EventKind::Put => !self.no_put,
                EventKind::Delete => !self.no_delete,
            })
            .collect();
        // The header never claims less than the events it carries.
        let newest = events.iter().map(|e| e.kv.mod_revision).max().unwrap_or(0);
        let revision = self.backend.revision().max(newest);
        for chunk in kept.chunks(self.limits.events_per_line_len_max.max(1)) {
            let resp = WatchResponse {
                events: chunk.iter().map(|e| json::Event::from(*e)).collect(),
                ..self.response(revision)
            };
            if !self.send(resp).await {
                return false;
            }
        }
        true
    }
}
