//! Watchers over the store's history.
//!
//! In: watch requests (a key range, a start revision, filters), the store
//! after each apply, cancellations. Out: for each watcher, its next batch
//! of events in revision order, continuing exactly where the previous batch
//! stopped (no gap, no duplicate), or a compaction notice that ends it when
//! the history it needs is gone.
//!
//! Each watcher keeps a cursor: the position (revision, change) of the
//! first change it has not examined. A batch is bounded both in events
//! returned and in changes examined, and may stop inside a revision (a
//! delete of many keys is one revision); the cursor makes that safe.

use crate::error::Compacted;
use crate::event::{Event, EventKind};
use crate::key_range::KeyRange;
use crate::keyspace::ScanLimits;
use crate::revision::Revision;
use crate::store::Store;
use std::collections::BTreeMap;
use thiserror::Error;

pub type WatchId = u64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchRequest {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// First revision to report; 0 means "from the next write on".
    pub start_revision: u64,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    pub watchers_len_max: usize,
    /// Events in one batch, met at the next revision boundary: a revision
    /// is never split (so one revision larger than this comes whole).
    pub batch_events_len_max: usize,
    /// Changes one batch may examine (matching or not), so a watcher on a
    /// rare key far behind costs bounded work per poll.
    pub batch_scanned_len_max: usize,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig { watchers_len_max: 10_000, batch_events_len_max: 1_000, batch_scanned_len_max: 10_000 }
    }
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum WatchError {
    #[error("too many watchers (at most {watchers_len_max})")]
    TooManyWatchers { watchers_len_max: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchUpdate {
    Events {
        watch_id: WatchId,
        events: Vec<Event>,
    },
    /// The watcher needed history below the compaction point; it is removed
    /// (etcd cancels it with this compact revision).
    Compacted {
        watch_id: WatchId,
        compact_revision: u64,
    },
}

#[derive(Clone, Debug)]
struct Watcher {
    range: KeyRange,
    next: Revision,
    prev_kv: bool,
    no_put: bool,
    no_delete: bool,
}

#[derive(Clone, Debug)]
pub struct WatchHub {
    config: WatchConfig,
    watchers: BTreeMap<WatchId, Watcher>,
    next_id: WatchId,
}

impl WatchHub {
    pub fn new(config: WatchConfig) -> WatchHub {
        assert!(config.batch_events_len_max > 0 && config.batch_scanned_len_max > 0, "empty batches never progress");
        WatchHub { config, watchers: BTreeMap::new(), next_id: 1 }
    }

    pub fn watch(&mut self, store: &Store, req: &WatchRequest) -> Result<WatchId, WatchError> {
        if self.watchers.len() >= self.config.watchers_len_max {
            return Err(WatchError::TooManyWatchers { watchers_len_max: self.config.watchers_len_max });
        }
        let start = if req.start_revision == 0 { store.revision() + 1 } else { req.start_revision };
        let watcher = Watcher {
            range: KeyRange::new(&req.key, &req.range_end),
            next: Revision::start_of(start),
            prev_kv: req.prev_kv,
            no_put: req.no_put,
            no_delete: req.no_delete,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.watchers.insert(id, watcher);
        Ok(id)
    }

    pub fn cancel(&mut self, id: WatchId) -> bool {
        self.watchers.remove(&id).is_some()
    }

    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Whether some watcher has history left to read (poll again without
    /// waiting for the next apply).
    pub fn is_behind(&self, store: &Store) -> bool {
        self.watchers.values().any(|w| w.next.main <= store.revision())
    }

    /// One bounded batch for every watcher with something new.
    pub fn poll(&mut self, store: &Store) -> Vec<WatchUpdate> {
        let limits = ScanLimits {
            events_len_max: self.config.batch_events_len_max,
            scanned_len_max: self.config.batch_scanned_len_max,
            // etcd never splits a revision between watch responses.
            whole_revisions: true,
        };
        let mut updates = Vec::new();
        let mut compacted = Vec::new();
        for (&watch_id, w) in self.watchers.iter_mut().filter(|(_, w)| w.next.main <= store.revision()) {
            match store.scan_events(w.next, &w.range, limits) {
                Err(Compacted { compact_revision }) => {
                    compacted.push(watch_id);
                    updates.push(WatchUpdate::Compacted { watch_id, compact_revision });
                }
                Ok(scan) => {
                    assert!(scan.next > w.next, "a scan from a position behind the store always moves forward");
                    w.next = scan.next;
                    let events = w.filter(scan.events);
                    if !events.is_empty() {
                        updates.push(WatchUpdate::Events { watch_id, events });
                    }
                }
            }
        }
        for id in compacted {
            self.watchers.remove(&id);
        }
        updates
    }
}

impl Watcher {
    fn filter(&self, events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter(|e| !(self.no_put && e.kind == EventKind::Put || self.no_delete && e.kind == EventKind::Delete))
            .map(|mut e| {
                if !self.prev_kv {
                    e.prev_kv = None;
                }
                e
            })
            .collect()
    }
}
