//! Where the replica's answers go: the dispatcher.
//!
//! In: every message the replica sends to this member's local client id —
//! replies and keep-alive replies keyed by (client, seq), watch batches
//! keyed by watch id, proxy batch answers keyed by the seq this member gave
//! the batch (under `batch_client`, the client id that seq belongs to). Out: each answer to the request waiting for it (none
//! waiting: dropped, the requester gave up); each watch batch to its
//! stream, checked for gaps (the replica adds `prev_kv` only when asked).
//!
//! A watch ends, with a reason its stream receives, when a batch number is
//! skipped (a lost message), when the history is compacted, when the
//! replica refuses it, or when the replica stops; it ends silently (the
//! stream closes) when the watcher does not keep up with its bounded
//! channel, and is cancelled at the replica once its receiver is dropped.

use crate::metrics::Metrics;
use haven_gateway::{BackendError, WatchUpdate};
use haven_ha::{AgentCommand, BatchAnswer};
use haven_runtime::NodeId;
use haven_station::{BackupImage, HaView, MemberAnswer, ReplyError, StationMsg, WatchEvents};
use haven_store::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

/// How often watches whose receiver was dropped are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The replica's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Answer {
    Reply(Result<Response, ReplyError>),
    KeepAlive(Result<i64, ReplyError>),
    Member(Result<MemberAnswer, ReplyError>),
    /// An operator's action queued (the event's id), or why not.
    Ha(Result<u64, ReplyError>),
    /// The replica's applied HA state; only ever asked of the local replica.
    HaView(Box<HaView>),
    /// Commands awaited from a node or a proxy's nodes (local replica only).
    Commands(Vec<AgentCommand>),
    /// The local replica's answer to a proxy's batch.
    Batch(BatchAnswer),
    /// The proxy a node is assigned, with its URL (local replica only).
    ProxyPlace(Option<(NodeId, Option<String>)>),
    /// A backup, or why not (local replica only).
    Backup(Result<BackupImage, ReplyError>),
}

impl Answer {
    pub(crate) fn error(&self) -> Option<&ReplyError> {
        match self {
            Answer::Reply(result) => result.as_ref().err(),
            Answer::KeepAlive(result) => result.as_ref().err(),
            Answer::Member(result) => result.as_ref().err(),
            Answer::Ha(result) => result.as_ref().err(),
            Answer::Backup(result) => result.as_ref().err(),
            Answer::HaView(_) | Answer::Commands(_) | Answer::Batch(_) | Answer::ProxyPlace(_) => None,
        }
    }
}

#[derive(Debug)]
struct WatchRoute {
    tx: mpsc::Sender<WatchUpdate>,
    /// The last batch number received.
    batch: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Requests waiting, by (client, seq); a retry may wait beside the first try.
    waiting: BTreeMap<(u64, u64), Vec<oneshot::Sender<Answer>>>,
    watches: BTreeMap<u64, WatchRoute>,
    /// The client id of the seqs this member gives proxy batches: a batch
    /// answer carries its seq alone, and waits in `waiting` under both.
    batch_client: u64,
}

/// The routes, shared by the handle (which registers) and the dispatcher.
pub(crate) type SharedRoutes = Arc<Mutex<Routes>>;

pub(crate) fn lock(routes: &SharedRoutes) -> std::sync::MutexGuard<'_, Routes> {
    routes.lock().expect("never poisoned: nothing panics while holding it")
}

impl Routes {
    pub(crate) fn wait_for(&mut self, key: (u64, u64)) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        self.waiting.entry(key).or_default().push(tx);
        rx
    }

    /// Drops the waiters of `key` that gave up.
    pub(crate) fn forget(&mut self, key: (u64, u64)) {
        if let Some(waiters) = self.waiting.get_mut(&key) {
            waiters.retain(|tx| !tx.is_closed());
            if waiters.is_empty() {
                self.waiting.remove(&key);
            }
        }
    }

    /// Routes whose proxy batch answers belong to client `batch_client`.
    pub(crate) fn new(batch_client: u64) -> Routes {
        Routes { batch_client, ..Routes::default() }
    }

    #[cfg(test)]
    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Registers watch `watch`, unless `len_max` are open.
    pub(crate) fn open_watch(
        &mut self,
        watch: u64,
        tx: mpsc::Sender<WatchUpdate>,
        len_max: usize,
    ) -> Result<(), BackendError> {
        if self.watches.len() >= len_max {
            return Err(BackendError::TooManyRequests);
        }
        self.watches.insert(watch, WatchRoute { tx, batch: 0 });
        Ok(())
    }

    pub(crate) fn close_watch(&mut self, watch: u64) {
        self.watches.remove(&watch);
    }

    pub(crate) fn watches_len(&self) -> usize {
        self.watches.len()
    }

    fn answer(&mut self, key: (u64, u64), answer: Answer) {
        for tx in self.waiting.remove(&key).unwrap_or_default() {
            let _ = tx.send(answer.clone());
        }
    }

    /// Hands a batch to its watch; returns whether the replica should cancel it.
    fn on_watch_events(&mut self, batch: WatchEvents) -> bool {
        let Some(route) = self.watches.get_mut(&batch.watch) else { return !batch.compacted };
        let update = if let Some(refused) = &batch.refused {
            Some(WatchUpdate::Closed { reason: format!("this member refused the watch: {refused:?}") })
        } else if batch.batch != route.batch + 1 {
            let reason = format!("watch messages lost (batch {} after {}): watch again", batch.batch, route.batch);
            Some(WatchUpdate::Closed { reason })
        } else if batch.compacted {
            Some(WatchUpdate::Compacted { compact_revision: batch.compact_revision })
        } else {
            None
        };
        route.batch = batch.batch;
        if let Some(last) = update {
            let _ = route.tx.try_send(last);
            self.watches.remove(&batch.watch);
            return !batch.compacted && batch.refused.is_none();
        }
        if batch.events.is_empty() {
            return false;
        }
        match route.tx.try_send(WatchUpdate::Events(batch.events)) {
            Ok(()) => false,
            // Not keeping up, or gone: close rather than skip.
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                self.watches.remove(&batch.watch);
                true
            }
        }
    }

    /// Watches whose receiver is gone.
    fn take_abandoned(&mut self) -> Vec<u64> {
        let gone: Vec<u64> = self.watches.iter().filter(|(_, r)| r.tx.is_closed()).map(|(id, _)| *id).collect();
        gone.iter().for_each(|id| self.close_watch(*id));
        gone
    }

    /// Ends every watch with `reason` (the replica stopped).
    pub(crate) fn close_all(&mut self, reason: &str) {
        for (_, route) in std::mem::take(&mut self.watches) {
            let _ = route.tx.try_send(WatchUpdate::Closed { reason: reason.to_owned() });
        }
        self.waiting.clear();
    }
}

/// Routes everything the replica sends to the local client until it stops.
pub(crate) async fn dispatch(
    mut from_replica: mpsc::Receiver<StationMsg>,
    to_replica: mpsc::Sender<StationMsg>,
    routes: SharedRoutes,
    watch_client: u64,
    metrics: Arc<Metrics>,
) {
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        let cancels = tokio::select! {
            msg = from_replica.recv() => {
                let Some(msg) = msg else { break };
                route_one(&routes, msg)
            }
            _ = sweep.tick() => lock(&routes).take_abandoned(),
        };
        for watch in cancels {
            // Lost when the replica is busy: it sends the next batch anyway and is told again.
            let _ = to_replica.try_send(StationMsg::CancelWatch { client: watch_client, watch });
        }
        metrics.watchers.set(i64::try_from(lock(&routes).watches_len()).unwrap_or(i64::MAX));
    }
    lock(&routes).close_all("this member stopped");
    metrics.watchers.set(0);
}

/// Routes one message; returns the watches to cancel.
fn route_one(routes: &SharedRoutes, msg: StationMsg) -> Vec<u64> {
    let mut routes = lock(routes);
    match msg {
        StationMsg::Reply(reply) => routes.answer((reply.client, reply.seq), Answer::Reply(reply.result)),
        StationMsg::KeepAliveReply(reply) => routes.answer((reply.client, reply.seq), Answer::KeepAlive(reply.result)),
        StationMsg::MemberReply(reply) => routes.answer((reply.client, reply.seq), Answer::Member(reply.result)),
        StationMsg::HaReply(reply) => routes.answer((reply.client, reply.seq), Answer::Ha(reply.result)),
        StationMsg::HaView(view) => routes.answer((view.client, view.seq), Answer::HaView(view)),
        StationMsg::Commands { client, seq, commands } => routes.answer((client, seq), Answer::Commands(commands)),
        StationMsg::ProxyPlace { client, seq, place } => routes.answer((client, seq), Answer::ProxyPlace(place)),
        StationMsg::Backup { client, seq, result } => routes.answer((client, seq), Answer::Backup(result)),
        StationMsg::ProxyAnswer(answer) => {
            let key = (routes.batch_client, answer.seq);
            routes.answer(key, Answer::Batch(answer));
        }
        StationMsg::WatchEvents(batch) => {
            let watch = batch.watch;
            if routes.on_watch_events(batch) {
                return vec![watch];
            }
        }
        other => tracing::debug!(message = ?other, "unexpected message to the local client, ignored"),
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_store::{Event, EventKind, KeyValue};

    fn batch(watch: u64, batch: u64, revisions: &[u64]) -> WatchEvents {
        let event = |rev: u64| Event {
            kind: EventKind::Put,
            kv: KeyValue { key: b"k".to_vec(), mod_revision: rev, ..KeyValue::default() },
            prev_kv: Some(KeyValue::default()),
        };
        let events = revisions.iter().map(|&rev| event(rev)).collect();
        WatchEvents { client: 1, watch, batch, events, compacted: false, compact_revision: 0, refused: None }
    }

    #[test]
    fn batches_in_order_flow_and_a_gap_closes_the_watch_with_a_reason() {
        let mut routes = Routes::default();
        let (tx, mut rx) = mpsc::channel(8);
        routes.open_watch(5, tx, 10).unwrap();
        assert!(!routes.on_watch_events(batch(5, 1, &[2, 3])));
        let Ok(WatchUpdate::Events(events)) = rx.try_recv() else { panic!("events") };
        assert_eq!(events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(), vec![2, 3]);
        assert!(routes.on_watch_events(batch(5, 3, &[5])), "a gap cancels at the replica");
        let Ok(WatchUpdate::Closed { reason }) = rx.try_recv() else { panic!("closed") };
        assert!(reason.contains("batch 3 after 1"), "{reason}");
        assert_eq!(routes.watches_len(), 0);
        assert!(routes.on_watch_events(batch(5, 4, &[6])), "batches of an unknown watch cancel it");
    }

    #[test]
    fn a_watcher_that_does_not_keep_up_is_closed_not_skipped() {
        let mut routes = Routes::default();
        let (tx, mut rx) = mpsc::channel(1);
        routes.open_watch(1, tx, 10).unwrap();
        assert!(!routes.on_watch_events(batch(1, 1, &[2])));
        assert!(routes.on_watch_events(batch(1, 2, &[3])), "full: closed and cancelled");
        let Ok(WatchUpdate::Events(events)) = rx.try_recv() else { panic!("the first batch") };
        assert_eq!(events[0].kv.mod_revision, 2);
        assert!(rx.try_recv().is_err(), "nothing after the first batch: the stream ends");
    }

    #[test]
    fn compaction_reports_the_revision_and_the_limit_refuses() {
        let mut routes = Routes::default();
        let (tx, mut rx) = mpsc::channel(4);
        routes.open_watch(1, tx.clone(), 1).unwrap();
        assert_eq!(routes.open_watch(2, tx, 1), Err(BackendError::TooManyRequests));
        let compacted = WatchEvents { compacted: true, compact_revision: 7, ..batch(1, 1, &[]) };
        assert!(!routes.on_watch_events(compacted), "the replica closed it already");
        assert_eq!(rx.try_recv().unwrap(), WatchUpdate::Compacted { compact_revision: 7 });
    }

    #[test]
    fn answers_reach_every_waiter_of_their_key_and_forgotten_waiters_go() {
        let mut routes = Routes::default();
        let first = routes.wait_for((1, 1));
        let retry = routes.wait_for((1, 1));
        let abandoned = routes.wait_for((1, 2));
        drop(abandoned);
        routes.forget((1, 2));
        assert_eq!(routes.waiting_len(), 1);
        routes.answer((1, 1), Answer::KeepAlive(Ok(5)));
        assert_eq!(first.blocking_recv().unwrap(), Answer::KeepAlive(Ok(5)));
        assert_eq!(retry.blocking_recv().unwrap(), Answer::KeepAlive(Ok(5)));
        assert_eq!(routes.waiting_len(), 0);
    }

    #[test]
    fn a_batch_answer_reaches_the_waiter_of_its_seq_only() {
        use haven_ha::{BatchAnswer, BatchOutcome};
        let routes: SharedRoutes = Arc::new(Mutex::new(Routes::new(3)));
        let mut waiting = lock(&routes).wait_for((3, 7));
        let busy = |seq| StationMsg::ProxyAnswer(BatchAnswer { seq, outcome: BatchOutcome::Busy });
        route_one(&routes, busy(8));
        assert!(waiting.try_recv().is_err(), "another batch's answer");
        route_one(&routes, busy(7));
        assert_eq!(waiting.try_recv().unwrap(), Answer::Batch(BatchAnswer { seq: 7, outcome: BatchOutcome::Busy }));
        assert_eq!(lock(&routes).waiting_len(), 0);
    }
}
