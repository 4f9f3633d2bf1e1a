//! The multi-version keyspace: etcd's MVCC store without leases.
//!
//! In: write transactions (puts and range deletes between `begin` and
//! `end`), reads at a revision, history scans from a position, compactions.
//! Out: key states at any retained revision, watch events in revision order,
//! and the quota bytes the retained history occupies.
//!
//! The store revision starts at 1 and a write transaction that changes
//! anything raises it by exactly one; its changes are numbered by `sub`.
//! Every change is also appended to the event history, which compaction
//! trims from the front, so history and versions are dropped together.

use crate::error::{Compacted, StoreError};
use crate::event::{Event, EventKind};
use crate::key_chunk::KeyChunk;
use crate::key_history::{self, BadHistory, KeyHistory, Live};
use crate::key_map::KeyMap;
use crate::key_range::KeyRange;
use crate::key_value::KeyValue;
use crate::lease_id::LeaseId;
use crate::revision::Revision;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// One change, in the event history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub rev: Revision,
    #[serde(with = "haven_runtime::byte_vec")]
    pub key: Vec<u8>,
    pub kind: EventKind,
}

/// What a history scan returns: matching events, and where to resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventScan {
    pub events: Vec<Event>,
    /// The first change not yet examined (after the last one, the start of
    /// the next revision).
    pub next: Revision,
}

/// How much one history scan may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLimits {
    /// Matching events returned.
    pub events_len_max: usize,
    /// Changes examined, matching or not.
    pub scanned_len_max: usize,
    /// Stop only between revisions (the first revision is returned whole
    /// even when it alone exceeds the limits).
    pub whole_revisions: bool,
}

/// A key a delete removed, with what the store needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeletedKey {
    pub key: Vec<u8>,
    pub lease: LeaseId,
    /// The previous key-value, when asked for.
    pub prev: Option<KeyValue>,
}

/// The write transaction in progress: its base revision and changes so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenTxn {
    begin: u64,
    changes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keyspace {
    /// Each history behind its own `Arc` too: a write to a chunk a
    /// snapshot shares copies the chunk's pointers, and only the histories
    /// it changes, not every history in the chunk.
    keys: KeyMap<Arc<KeyHistory>>,
    events: VecDeque<EventRecord>,
    revision: u64,
    compact_revision: Option<u64>,
    bytes_used: u64,
    open: Option<OpenTxn>,
}

/// The keyspace as a snapshot stores it (quota bytes are recomputed).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct KeyspaceImage {
    pub keys: Vec<(ImageKey, KeyHistory)>,
    pub events: Vec<EventRecord>,
    pub revision: u64,
    pub compact_revision: Option<u64>,
}

/// A key in a snapshot, as serde `bytes` (see `haven_runtime::byte_vec`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct ImageKey(#[serde(with = "haven_runtime::byte_vec")] pub Vec<u8>);

impl Default for Keyspace {
    fn default() -> Keyspace {
        // etcd's empty store answers at revision 1; the first write makes 2.
        Keyspace {
            keys: KeyMap::default(),
            events: VecDeque::new(),
            revision: 1,
            compact_revision: None,
            bytes_used: 0,
            open: None,
        }
    }
}

impl Keyspace {
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn compact_revision(&self) -> Option<u64> {
        self.compact_revision
    }

    pub fn bytes_used(&self) -> u64 {
        self.bytes_used
    }

    /// The revision a read of `revision` (0 = current) sees, or etcd's error.
    pub fn read_revision(&self, revision: u64) -> Result<u64, StoreError> {
        let base = self.open.map_or(self.revision, |t| t.begin);
        if revision > base {
            return Err(StoreError::FutureRevision { current_revision: base });
        }
        match self.compact_revision {
            Some(c) if revision != 0 && revision < c => Err(StoreError::Compacted { compact_revision: c }),
            _ if revision == 0 => Ok(self.revision),
            _ => Ok(revision),
        }
    }

    pub fn latest(&self, key: &[u8]) -> Option<(Revision, &Live)> {
        self.keys.get(key)?.latest()
    }

    /// Keys alive at `main` within `range`, in key order.
    pub fn live_at<'a>(
        &'a self,
        range: &'a KeyRange,
        main: u64,
    ) -> impl Iterator<Item = (&'a [u8], Revision, &'a Live)> + 'a {
        let span = range.bounds().map(|b| self.keys.range(b));
        span.into_iter().flatten().filter_map(move |(k, h)| h.at(main).map(|(r, l)| (k.as_slice(), r, l)))
    }

    pub fn begin(&mut self) {
        assert!(self.open.is_none(), "write transactions do not nest: one apply is one transaction");
        self.open = Some(OpenTxn { begin: self.revision, changes: 0 });
    }

    /// Closes the write transaction; returns whether it changed anything.
    pub fn end(&mut self) -> bool {
        let txn = self.open.take().expect("end without begin");
        assert_eq!(self.revision, txn.begin + u64::from(txn.changes > 0), "a txn raises the revision at most once");
        txn.changes > 0
    }

    /// The position of the next change; the first one raises the revision.
    fn next_change(&mut self) -> Revision {
        let txn = self.open.as_mut().expect("writes happen only inside begin/end");
        let rev = Revision::new(txn.begin + 1, txn.changes);
        txn.changes += 1;
        self.revision = txn.begin + 1;
        rev
    }

    #[cfg(test)]
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, lease: LeaseId) {
        self.put_with(key, |_| (value, lease, ()));
    }

    /// A put whose value and lease may depend on the key's current state:
    /// `make` sees that state (`None` if absent or deleted) and returns the
    /// value, the lease and whatever the caller wants of the old state.
    ///
    /// Why one call: looking the key up once to read it and again to write
    /// it cost two searches of its chunk and two chains of cache misses
    /// (slot, history, versions) per put on every replica: one lookup
    /// took a sixth off the store's time per put at 100,000 keys
    /// (`haven bench store`, 1,317-1,549 -> 1,130-1,332 ns on 2 Xeon cores).
    pub fn put_with<T>(
        &mut self,
        key: &[u8],
        make: impl FnOnce(Option<(Revision, &Live)>) -> (Vec<u8>, LeaseId, T),
    ) -> T {
        let rev = self.next_change();
        let history = Arc::make_mut(self.keys.get_or_default(key));
        let (value, lease, out) = make(history.latest());
        self.bytes_used += history.put(key.len(), rev, value, lease);
        self.events.push_back(EventRecord { rev, key: key.to_vec(), kind: EventKind::Put });
        out
    }

    /// Deletes every live key in `range`, in key order.
    pub fn delete_range(&mut self, range: &KeyRange, want_prev: bool) -> Vec<DeletedKey> {
        let main = self.revision;
        let live: Vec<DeletedKey> = self
            .live_at(range, main)
            .map(|(key, rev, live)| DeletedKey {
                key: key.to_vec(),
                lease: live.lease,
                prev: want_prev.then(|| key_history::to_key_value(key, rev, live)),
            })
            .collect();
        for d in &live {
            self.delete(&d.key);
        }
        live
    }

    fn delete(&mut self, key: &[u8]) {
        let rev = self.next_change();
        let history = Arc::make_mut(self.keys.get_mut(key).expect("only live keys are deleted"));
        self.bytes_used += history.delete(key.len(), rev);
        self.events.push_back(EventRecord { rev, key: key.to_vec(), kind: EventKind::Delete });
    }

    /// For a cluster restored from a backup (etcd's restore with
    /// `--bump-revision` and `--mark-compacted`): history compacted down to
    /// each key's live version, then the revision moved up by `bump` and
    /// everything below it marked compacted. A watcher or reader of the
    /// lost cluster that asks for a revision it saw there is then told
    /// "compacted" and reads again, rather than being shown this
    /// cluster's different changes under the same numbers. Returns the new
    /// revision, or `None` (and changes nothing) if it would overflow.
    pub fn bump_revision(&mut self, bump: u64) -> Option<u64> {
        let revision = self.revision.checked_add(bump)?;
        if self.compact_revision.is_none_or(|c| c < self.revision) {
            self.compact(self.revision).expect("the revision is above the compaction point and not in the future");
        }
        // Compaction at the revision left every key one live version at or
        // below it, so no change since needs tracking for the next one.
        self.events.clear();
        (self.revision, self.compact_revision) = (revision, Some(revision));
        Some(revision)
    }

    /// Drops history no read at `at` or later needs (etcd's Compact).
    pub fn compact(&mut self, at: u64) -> Result<(), StoreError> {
        assert!(self.open.is_none(), "compaction is its own command, never inside a write");
        if let Some(c) = self.compact_revision.filter(|&c| at <= c) {
            return Err(StoreError::Compacted { compact_revision: c });
        }
        if at > self.revision {
            return Err(StoreError::FutureRevision { current_revision: self.revision });
        }
        self.compact_revision = Some(at);
        // Only keys changed at or after the previous compaction point can
        // hold a version `at` makes obsolete: that compaction left every
        // other key one live version at or below it, which `at` keeps too.
        // The event history holds exactly those changes (compaction trims
        // it below its point), so this costs the writes since the last
        // compaction, not a walk over every key: with 100,000 keys the walk
        // stalled every replica's event loop for tens of milliseconds, all
        // at the same log index.
        let Keyspace { keys, events, bytes_used, .. } = self;
        for event in events.iter().take_while(|e| e.rev.main <= at) {
            // Absent: dropped by an earlier event. Unchanged: left alone, so
            // a history a snapshot shares is not copied for nothing.
            let Some(history) = keys.get_mut_if(&event.key, |h| h.compacted_below(at) > 0) else { continue };
            let history = Arc::make_mut(history);
            *bytes_used -= history.compact(event.key.len(), at);
            if history.is_empty() {
                keys.remove(&event.key);
            }
        }
        while self.events.front().is_some_and(|e| e.rev.main < at) {
            self.events.pop_front();
        }
        Ok(())
    }

    /// The compaction above as a walk over every key: the reference its
    /// shortcut is checked against.
    #[cfg(test)]
    fn compact_every_key(&mut self, at: u64) {
        self.compact_revision = Some(at);
        let mut freed = 0;
        self.keys.retain(|key, history| {
            freed += Arc::make_mut(history).compact(key.len(), at);
            !history.is_empty()
        });
        self.bytes_used -= freed;
        while self.events.front().is_some_and(|e| e.rev.main < at) {
            self.events.pop_front();
        }
    }

    /// Events from position `from` on, in revision order, within `limits`.
    pub fn scan(&self, from: Revision, range: &KeyRange, limits: ScanLimits) -> Result<EventScan, Compacted> {
        if let Some(c) = self.compact_revision.filter(|&c| from.main < c) {
            return Err(Compacted { compact_revision: c });
        }
        let start = self.events.partition_point(|e| e.rev < from);
        let (mut events, mut scanned) = (Vec::new(), 0);
        for record in self.events.range(start..) {
            let full = events.len() >= limits.events_len_max || scanned >= limits.scanned_len_max;
            let boundary = !limits.whole_revisions || (scanned > 0 && record.rev.sub == 0);
            if full && boundary {
                return Ok(EventScan { events, next: record.rev });
            }
            scanned += 1;
            if let Some(event) = range.contains(&record.key).then(|| self.event(record)).flatten() {
                events.push(event);
            }
        }
        Ok(EventScan { events, next: Revision::start_of(self.revision + 1) })
    }

    /// The event a record stands for; `None` only for a put at the
    /// compaction point whose version compaction dropped, which happens when
    /// the same txn put the key and then deleted it with a `"\0"` range end
    /// (etcd's duplicate check lets that through, and its watch skips the put too).
    fn event(&self, record: &EventRecord) -> Option<Event> {
        let history = self.keys.get(&record.key);
        let kv = match record.kind {
            EventKind::Put => {
                let live = history.and_then(|h| h.put_at(record.rev));
                let at_floor = self.compact_revision == Some(record.rev.main);
                assert!(live.is_some() || at_floor, "a put above the compaction point keeps its version");
                key_history::to_key_value(&record.key, record.rev, live?)
            }
            EventKind::Delete => {
                KeyValue { key: record.key.clone(), mod_revision: record.rev.main, ..KeyValue::default() }
            }
        };
        // etcd reads prev_kv at mod_revision - 1, so it is absent once that is compacted.
        let prev_main = record.rev.main - 1;
        let prev_visible = self.compact_revision.is_none_or(|c| prev_main >= c);
        let prev = history.filter(|_| prev_visible).and_then(|h| h.at(prev_main));
        let prev_kv = prev.map(|(rev, live)| key_history::to_key_value(&record.key, rev, live));
        Some(Event { kind: record.kind, kv, prev_kv })
    }

    /// Every key's history as it is now, in shared chunks a later write
    /// copies before changing (see `KeyMap`), and the key count.
    pub fn frozen_keys(&self) -> (Vec<Arc<KeyChunk<Arc<KeyHistory>>>>, usize) {
        assert!(self.open.is_none(), "a snapshot is taken between applies");
        (self.keys.frozen_chunks(), self.keys.len())
    }

    #[cfg(test)]
    pub fn iter_keys(&self) -> impl Iterator<Item = (&Vec<u8>, &KeyHistory)> {
        self.keys.iter().map(|(key, history)| (key, &**history))
    }

    pub fn events(&self) -> &VecDeque<EventRecord> {
        &self.events
    }

    /// Rebuilds a keyspace from a decoded image, checking every invariant
    /// the code above relies on (a checksummed snapshot can still be wrong).
    pub fn from_image(image: KeyspaceImage) -> Result<Keyspace, BadHistory> {
        let KeyspaceImage { keys, events, revision, compact_revision } = image;
        if revision == 0 || compact_revision.is_some_and(|c| c > revision) {
            return Err(BadHistory("revision is 0 or below the compaction point"));
        }
        let mut ks = Keyspace { revision, compact_revision, ..Keyspace::default() };
        for (ImageKey(key), history) in keys {
            history.validate()?;
            if key.is_empty() || history.revisions().any(|(r, _)| r.main > revision || r.main < 2) {
                return Err(BadHistory("an empty key or a version outside 2..=revision"));
            }
            ks.bytes_used += history.bytes(key.len());
            if ks.keys.insert(key, Arc::new(history)).is_some() {
                return Err(BadHistory("a key appears twice"));
            }
        }
        ks.events = Self::validated_events(&ks, events)?;
        Ok(ks)
    }

    fn validated_events(ks: &Keyspace, events: Vec<EventRecord>) -> Result<VecDeque<EventRecord>, BadHistory> {
        let floor = ks.compact_revision.unwrap_or(0);
        for pair in events.windows(2) {
            if pair[1].rev <= pair[0].rev {
                return Err(BadHistory("events are not in revision order"));
            }
        }
        for e in &events {
            let resolvable = match e.kind {
                EventKind::Put => e.rev.main == floor || ks.keys.get(&e.key).is_some_and(|h| h.put_at(e.rev).is_some()),
                EventKind::Delete => true,
            };
            if !resolvable || e.rev.main < floor || e.rev.main > ks.revision || e.rev.main < 2 {
                return Err(BadHistory("an event outside the retained history"));
            }
        }
        Ok(events.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bumped_revision_keeps_the_live_values_and_marks_the_past_compacted() {
        let mut ks = Keyspace::default();
        for v in 0..3u8 {
            ks.begin();
            ks.put(b"k", vec![v], 0);
            ks.end();
        }
        assert_eq!(ks.revision(), 4);
        assert_eq!(ks.bump_revision(1_000), Some(1_004));
        assert_eq!((ks.revision(), ks.compact_revision()), (1_004, Some(1_004)));
        assert_eq!(ks.read_revision(4), Err(StoreError::Compacted { compact_revision: 1_004 }));
        assert_eq!(ks.read_revision(0), Ok(1_004));
        ks.begin();
        ks.put(b"j", vec![9], 0);
        ks.end();
        assert_eq!(ks.revision(), 1_005, "the next write follows the bumped revision");
        assert_eq!(ks.bump_revision(u64::MAX), None, "an overflow is refused");
        assert_eq!(ks.revision(), 1_005, "and changes nothing");
    }

    /// One write transaction over a small keyspace, or a compaction at a
    /// fraction of the way from the last compaction point to the revision.
    #[derive(Clone, Debug)]
    enum Step {
        Put(u8, u8),
        Delete(u8, u8),
        /// A put then a delete of the same key in one transaction.
        PutDelete(u8),
        Compact(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..8u8, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
            2 => (0..8u8, 1..4u8).prop_map(|(k, n)| Step::Delete(k, n)),
            1 => (0..8u8).prop_map(Step::PutDelete),
            1 => any::<u8>().prop_map(Step::Compact),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'k', b'0' + k]
    }

    fn write(ks: &mut Keyspace, step: &Step) {
        ks.begin();
        match *step {
            Step::Put(k, v) => ks.put(&key(k), vec![v], 0),
            Step::Delete(k, n) => drop(ks.delete_range(&KeyRange::new(&key(k), &key(k + n)), false)),
            Step::PutDelete(k) => {
                ks.put(&key(k), vec![k], 0);
                drop(ks.delete_range(&KeyRange::single(&key(k)), false));
            }
            Step::Compact(_) => unreachable!("not a write"),
        }
        ks.end();
    }

    proptest! {
        /// Compacting through the event history leaves exactly what a walk
        /// over every key leaves: versions, events and quota bytes.
        #[test]
        fn compaction_through_the_events_equals_a_walk_over_every_key(steps in prop::collection::vec(step(), 1..120)) {
            let (mut fast, mut reference) = (Keyspace::default(), Keyspace::default());
            for step in &steps {
                match *step {
                    Step::Compact(fraction) => {
                        let floor = fast.compact_revision().map_or(1, |c| c + 1);
                        if floor > fast.revision() {
                            continue;
                        }
                        let at = floor + (fast.revision() - floor) * u64::from(fraction) / 255;
                        fast.compact(at).expect("between the last point and the revision");
                        reference.compact_every_key(at);
                    }
                    _ => {
                        write(&mut fast, step);
                        write(&mut reference, step);
                    }
                }
                prop_assert_eq!(&fast, &reference);
            }
        }
    }
}
