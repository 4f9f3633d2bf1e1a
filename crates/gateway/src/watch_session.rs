//! One `/v3/watch` connection: the watches it opened and their output.
//!
//! In: the client's stream of watch requests (create, cancel, progress) and
//! each open watch's updates from the backend. Out: etcd's watch response
//! lines, in order per watch: `created` first, then events (at most
//! `events_per_line_len_max` per line), then `canceled` when the client
//! cancels, the history is compacted, or the backend closes the watch.
//! Watch ids are chosen per connection from 0 up, as etcd does.

use crate::backend::{Backend, WatchCreate};
use crate::body::MessageStream;
use crate::json::{self, FilterType, ResponseHeader, WatchCreateRequest, WatchRequest, WatchResponse};
use crate::limits::GatewayLimits;
use crate::stream::{error_line, result_line};
use crate::watch_forwarder::Forwarder;
use axum::body::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The id etcd puts on answers that concern no single watch.
const NO_WATCH_ID: i64 = -1;

#[derive(Debug)]
pub(crate) struct WatchSession<B> {
    backend: B,
    limits: Arc<GatewayLimits>,
    out: mpsc::Sender<Bytes>,
    /// Open watches, each forwarded by its own task.
    watches: BTreeMap<i64, JoinHandle<()>>,
    next_id: i64,
}

/// Whether the client is still there to read what we write.
pub(crate) type Alive = bool;

impl<B: Backend> WatchSession<B> {
    pub(crate) fn new(backend: B, limits: Arc<GatewayLimits>, out: mpsc::Sender<Bytes>) -> WatchSession<B> {
        WatchSession { backend, limits, out, watches: BTreeMap::new(), next_id: 0 }
    }

    /// Serves requests until the client stops sending; open watches keep
    /// streaming after that, until the client disconnects.
    pub(crate) async fn run(mut self, mut requests: MessageStream) {
        loop {
            let next = tokio::select! {
                _ = self.out.closed() => break,
                next = requests.next::<WatchRequest>() => next,
            };
            let alive = match next {
                None => break,
                Some(Ok(req)) => self.handle(req).await,
                Some(Err(e)) => {
                    let _ = self.out.send(error_line(&e)).await;
                    self.watches.values().for_each(JoinHandle::abort);
                    false
                }
            };
            if !alive {
                break;
            }
        }
    }

    async fn handle(&mut self, req: WatchRequest) -> Alive {
        if let Some(create) = req.create_request {
            self.create(create).await
        } else if let Some(cancel) = req.cancel_request {
            match self.watches.remove(&cancel.watch_id) {
                // etcd says nothing about a watch it does not know.
                None => true,
                Some(task) => {
                    task.abort();
                    let resp = WatchResponse { watch_id: cancel.watch_id, canceled: true, ..self.response() };
                    self.send(resp).await
                }
            }
        } else if req.progress_request.is_some() {
            let resp = WatchResponse { watch_id: NO_WATCH_ID, ..self.response() };
            self.send(resp).await
        } else {
            true
        }
    }

    fn response(&self) -> WatchResponse {
        WatchResponse { header: header(&self.backend, self.backend.revision()), ..WatchResponse::default() }
    }

    async fn send(&self, resp: WatchResponse) -> Alive {
        self.out.send(result_line(resp)).await.is_ok()
    }

    async fn create(&mut self, create: WatchCreateRequest) -> Alive {
        self.watches.retain(|_, task| !task.is_finished());
        let base = self.response();
        let refuse = |watch_id, reason: String| WatchResponse {
            watch_id,
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..base.clone()
        };
        if self.watches.len() >= self.limits.watches_per_connection_len_max {
            let max = self.limits.watches_per_connection_len_max;
            let reason = format!("too many watches on this connection (at most {max}): cancel some or open another");
            return self.send(refuse(NO_WATCH_ID, reason)).await;
        }
        if create.watch_id != 0 && self.watches.contains_key(&create.watch_id) {
            let reason = "mvcc: duplicate watch ID provided on the WatchStream".to_string();
            return self.send(refuse(NO_WATCH_ID, reason)).await;
        }
        let id = if create.watch_id != 0 { create.watch_id } else { self.auto_id() };
        let request = WatchCreate {
            key: create.key.clone(),
            range_end: create.range_end.clone(),
            start_revision: json::store_u64(create.start_revision),
            prev_kv: create.prev_kv,
        };
        let updates = match self.backend.watch(request).await {
            Ok(updates) => updates,
            Err(e) => return self.send(refuse(id, e.to_string())).await,
        };
        if !self.send(WatchResponse { watch_id: id, created: true, ..self.response() }).await {
            return false;
        }
        let forwarder = Forwarder {
            backend: self.backend.clone(),
            limits: self.limits.clone(),
            out: self.out.clone(),
            id,
            no_put: create.filters.contains(&FilterType::NoPut),
            no_delete: create.filters.contains(&FilterType::NoDelete),
            progress_notify: create.progress_notify,
        };
        self.watches.insert(id, tokio::spawn(forwarder.run(updates)));
        true
    }

    /// The lowest unused id from the last one given, as etcd's AutoWatchID.
    fn auto_id(&mut self) -> i64 {
        while self.watches.contains_key(&self.next_id) {
            self.next_id += 1;
        }
        self.next_id += 1;
        self.next_id - 1
    }
}

pub(crate) fn header<B: Backend>(backend: &B, revision: u64) -> ResponseHeader {
    ResponseHeader::new(&backend.identity(), revision)
}
