//! One watch of the in-memory backend: reads the store's history from a
//! cursor and sends it on.
//!
//! In: the store (shared with the backend) and its revision notices. Out:
//! the watch's updates in order, bounded batches, with backpressure (a
//! full channel makes this reader wait, never skip), a compaction notice
//! when its history is gone, or `Closed` when the backend is dropped.

use crate::backend::WatchUpdate;
use crate::memory::Inner;
use haven_store::{Compacted, KeyRange, Revision, ScanLimits};
use std::sync::Weak;
use tokio::sync::{mpsc, watch};

const WATCH_SCAN_LIMITS: ScanLimits =
    ScanLimits { events_len_max: 1_000, scanned_len_max: 10_000, whole_revisions: false };

/// Reads one watch's events from the store's history, from its cursor on.
#[derive(Debug)]
pub(crate) struct WatchReader {
    pub(crate) inner: Weak<Inner>,
    pub(crate) range: KeyRange,
    pub(crate) next: Revision,
    pub(crate) prev_kv: bool,
}

impl WatchReader {
    pub(crate) async fn run(mut self, tx: mpsc::Sender<WatchUpdate>, mut revisions: watch::Receiver<u64>) {
        loop {
            revisions.borrow_and_update();
            let scan = {
                let Some(inner) = self.inner.upgrade() else { break };
                let state = inner.lock();
                (self.next.main <= state.store.revision())
                    .then(|| state.store.scan_events(self.next, &self.range, WATCH_SCAN_LIMITS))
            };
            match scan {
                Some(Err(Compacted { compact_revision })) => {
                    let _ = tx.send(WatchUpdate::Compacted { compact_revision }).await;
                    return;
                }
                Some(Ok(scan)) => {
                    self.next = scan.next;
                    let mut events = scan.events;
                    if !self.prev_kv {
                        events.iter_mut().for_each(|e| e.prev_kv = None);
                    }
                    if !events.is_empty() && tx.send(WatchUpdate::Events(events)).await.is_err() {
                        return;
                    }
                }
                None => tokio::select! {
                    changed = revisions.changed() => if changed.is_err() { break },
                    _ = tx.closed() => return,
                },
            }
        }
        let _ = tx.send(WatchUpdate::Closed { reason: "etcdserver: server stopped".to_string() }).await;
    }
}
