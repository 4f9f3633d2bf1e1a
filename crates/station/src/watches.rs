//! Watches one replica serves from its own applied state (as etcd members
//! do, leader or not).
//!
//! In: watch and cancel requests from clients, and the store after entries
//! apply. Out: [`WatchEvents`] messages: for each watch, numbered batches
//! (1, 2, ...) that continue exactly where the previous one stopped, so a
//! client can tell a lost message (a gap in the numbers) from a duplicate;
//! or a refusal, or a compaction notice that closes the watch.
//!
//! Watches are volatile: they live in the running replica and are lost on
//! a crash; the client watches again from where it got to.

use crate::msg::{ReplyError, StationMsg, WatchCreate, WatchEvents};
use crate::replica::Replica;
use haven_runtime::{CtxFor, NodeId};
use haven_store::{Event, Store, WatchConfig, WatchHub, WatchId, WatchRequest, WatchUpdate};
use std::collections::BTreeMap;

/// Hub polls one replica step makes at most; a watcher still behind after
/// them is served on the next step (Raft's heartbeat ticks keep coming).
const POLLS_PER_STEP_MAX: usize = 4;

/// Who a watch answers to: (client node, session, the client's watch id).
type Owner = (NodeId, u64, u64);

#[derive(Debug)]
struct Served {
    owner: Owner,
    /// Number of the last batch sent.
    batch: u64,
}

#[derive(Debug)]
pub(crate) struct Watches {
    hub: WatchHub,
    by_owner: BTreeMap<Owner, WatchId>,
    served: BTreeMap<WatchId, Served>,
}

impl Watches {
    pub(crate) fn new(watches_max: usize) -> Watches {
        let config =
            WatchConfig { watchers_len_max: watches_max, batch_events_len_max: 256, batch_scanned_len_max: 4096 };
        Watches { hub: WatchHub::new(config), by_owner: BTreeMap::new(), served: BTreeMap::new() }
    }

    /// Opens `create` for `from`; a duplicate of an open watch's request changes nothing.
    pub(crate) fn open(&mut self, store: &Store, from: NodeId, create: &WatchCreate) -> Result<(), ReplyError> {
        let owner = (from, create.client, create.watch);
        if self.by_owner.contains_key(&owner) {
            return Ok(());
        }
        let request = WatchRequest {
            key: create.key.clone(),
            range_end: create.range_end.clone(),
            start_revision: create.start_revision,
            prev_kv: create.prev_kv,
            ..WatchRequest::default()
        };
        let id = self.hub.watch(store, &request).map_err(|_| ReplyError::Busy)?;
        self.by_owner.insert(owner, id);
        let fresh = self.served.insert(id, Served { owner, batch: 0 }).is_none();
        assert!(fresh, "the hub never reuses a watch id");
        Ok(())
    }

    pub(crate) fn cancel(&mut self, from: NodeId, client: u64, watch: u64) {
        if let Some(id) = self.by_owner.remove(&(from, client, watch)) {
            self.served.remove(&id);
            assert!(self.hub.cancel(id), "every watch served is in the hub");
        }
        assert_eq!(self.by_owner.len(), self.hub.len(), "the maps and the hub hold the same watches");
    }

    /// The next batches of every watch with something new, each with the
    /// client node to send it to.
    pub(crate) fn poll(&mut self, store: &Store) -> Vec<(NodeId, WatchEvents)> {
        let mut out = Vec::new();
        for _ in 0..POLLS_PER_STEP_MAX {
            if self.hub.is_empty() || !self.hub.is_behind(store) {
                break;
            }
            for update in self.hub.poll(store) {
                out.push(match update {
                    WatchUpdate::Events { watch_id, events } => self.batch(watch_id, events, None),
                    WatchUpdate::Compacted { watch_id, compact_revision } => {
                        self.batch(watch_id, Vec::new(), Some(compact_revision))
                    }
                });
            }
        }
        out
    }

    /// The next batch of watch `id`; `compacted` holds the compaction
    /// revision when the history it needs is gone.
    fn batch(&mut self, id: WatchId, events: Vec<Event>, compacted: Option<u64>) -> (NodeId, WatchEvents) {
        let served = self.served.get_mut(&id).expect("the hub reports only watches served here");
        served.batch += 1;
        let ((to, client, watch), batch) = (served.owner, served.batch);
        if compacted.is_some() {
            // The hub closed it already.
            self.served.remove(&id);
            self.by_owner.remove(&(to, client, watch));
        }
        let compact_revision = compacted.unwrap_or(0);
        let compacted = compacted.is_some();
        (to, WatchEvents { client, watch, batch, events, compacted, compact_revision, refused: None })
    }
}

/// Answers a watch request that could not be opened.
pub(crate) fn refuse(ctx: &mut impl CtxFor<Replica>, to: NodeId, create: &WatchCreate, error: ReplyError) {
    let (client, watch) = (create.client, create.watch);
    let events = WatchEvents {
        client,
        watch,
        batch: 1,
        events: Vec::new(),
        compacted: false,
        compact_revision: 0,
        refused: Some(error),
    };
    ctx.send(to, StationMsg::WatchEvents(events));
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_store::{CompactionRequest, PutRequest, Request, StoreConfig};

    const CLIENT: NodeId = NodeId(7);

    fn put(store: &mut Store, key: &str) {
        let put = PutRequest { key: key.as_bytes().to_vec(), value: b"v".to_vec(), ..PutRequest::default() };
        store.apply(&Request::Put(put)).expect("a small put fits");
    }

    fn create(watch: u64, start_revision: u64) -> WatchCreate {
        WatchCreate { client: 1, watch, key: b"k".to_vec(), range_end: b"l".to_vec(), start_revision, prev_kv: false }
    }

    fn revisions(batch: &WatchEvents) -> Vec<u64> {
        batch.events.iter().map(|e| e.kv.mod_revision).collect()
    }

    #[test]
    fn batches_are_numbered_from_one_and_continue_where_the_last_stopped() {
        let mut store = Store::new(StoreConfig::default());
        put(&mut store, "k0");
        let mut watches = Watches::new(4);
        watches.open(&store, CLIENT, &create(1, 1)).unwrap();
        let first = watches.poll(&store);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].0, first[0].1.batch, revisions(&first[0].1)), (CLIENT, 1, vec![2]));
        assert!(watches.poll(&store).is_empty(), "nothing new, nothing sent");
        put(&mut store, "k1");
        put(&mut store, "x"); // outside the range
        let second = watches.poll(&store);
        assert_eq!((second[0].1.batch, revisions(&second[0].1)), (2, vec![3]));
    }

    #[test]
    fn a_repeated_request_opens_nothing_and_the_limit_refuses_busy() {
        let store = Store::new(StoreConfig::default());
        let mut watches = Watches::new(2);
        watches.open(&store, CLIENT, &create(1, 1)).unwrap();
        watches.open(&store, CLIENT, &create(1, 1)).unwrap();
        assert_eq!(watches.hub.len(), 1, "a duplicated request is the same watch");
        watches.open(&store, CLIENT, &create(2, 1)).unwrap();
        assert_eq!(watches.open(&store, CLIENT, &create(3, 1)), Err(ReplyError::Busy));
        watches.cancel(CLIENT, 1, 2);
        assert_eq!(watches.open(&store, CLIENT, &create(3, 1)), Ok(()), "a cancel frees a place");
    }

    #[test]
    fn a_watch_from_a_compacted_revision_is_told_so_and_closed() {
        let mut store = Store::new(StoreConfig::default());
        (0..3).for_each(|_| put(&mut store, "k0"));
        store.apply(&Request::Compact(CompactionRequest { revision: 3, physical: false })).unwrap();
        let mut watches = Watches::new(4);
        watches.open(&store, CLIENT, &create(1, 1)).unwrap();
        let sent = watches.poll(&store);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].1.compacted && sent[0].1.events.is_empty());
        assert_eq!(sent[0].1.compact_revision, 3, "the client learns where history starts");
        assert!(watches.hub.is_empty() && watches.by_owner.is_empty() && watches.served.is_empty());
    }

    #[test]
    fn prev_kv_is_sent_only_to_a_watch_that_asked_for_it() {
        let mut store = Store::new(StoreConfig::default());
        put(&mut store, "k0");
        put(&mut store, "k0");
        let mut watches = Watches::new(4);
        watches.open(&store, CLIENT, &create(1, 3)).unwrap();
        watches.open(&store, CLIENT, &WatchCreate { prev_kv: true, ..create(2, 3) }).unwrap();
        let sent = watches.poll(&store);
        let prev_of = |watch: u64| {
            let batch = &sent.iter().find(|(_, b)| b.watch == watch).expect("a batch per watch").1;
            batch.events.iter().map(|e| e.prev_kv.as_ref().map(|kv| kv.mod_revision)).collect::<Vec<_>>()
        };
        assert_eq!(prev_of(1), vec![None]);
        assert_eq!(prev_of(2), vec![Some(2)], "the put at 3 replaced the put at 2");
    }
}
