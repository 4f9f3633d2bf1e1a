//! A store snapshot written a few keys at a time.
//!
//! In: a store, frozen when the writer is made ([`Store::snapshot_writer`]);
//! then calls to [`StoreSnapshotWriter::write`], each with a budget of keys.
//! Out: the payload of the store's snapshot record (version
//! [`crate::SNAPSHOT_VERSION`]), byte for byte what [`Store::snapshot`]
//! holds for the store as it was frozen, however it was written since.
//!
//! Why: 100,000 keys take tens of milliseconds to encode, and a replica that
//! encodes them in one go stops applying, answering and heartbeating for
//! that long. Freezing costs a few hundred `Arc` clones (the keys live in
//! shared chunks, see `KeyMap`) and the encoding of everything but the
//! keys (history events, revisions, leases: small, and bounded by the
//! history limit), so the caller can spread the keys over many turns.
//!
//! The layout is postcard's for `StoreImage` (struct fields one after the
//! other): the key count as a varint, each key (a bytes item) with its
//! history, then the events, revision, compaction point and leases, then,
//! only if any lease was granted in milliseconds, their TTLs.

use crate::key_chunk::KeyChunk;
use crate::key_history::KeyHistory;
use crate::snapshot::{SNAPSHOT_PAYLOAD_BYTES_MAX, SnapshotError};
use crate::store::Store;
use serde::{Serialize, Serializer};
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

#[derive(Debug)]
pub struct StoreSnapshotWriter {
    /// Chunks not yet written whole, in key order.
    chunks: VecDeque<Arc<KeyChunk<Arc<KeyHistory>>>>,
    /// The last key written from the front chunk, if any.
    written_to: Option<Vec<u8>>,
    keys_left: usize,
    /// The caller's bytes, then the payload so far.
    out: Vec<u8>,
    /// Where the payload starts in `out`.
    start: usize,
    /// crc32c of the payload so far: the caller can checksum a record
    /// around it without reading tens of MB again in one turn.
    crc: u32,
    /// Everything after the keys, encoded when frozen.
    tail: Vec<u8>,
}

/// A key as serde `bytes`, as `ImageKey` decodes it.
struct KeyRef<'a>(&'a [u8]);

impl Serialize for KeyRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

fn encoding(e: postcard::Error) -> SnapshotError {
    SnapshotError::Payload(e.to_string())
}

impl Store {
    /// A writer of this store's snapshot as it is now, appending to `out`
    /// (whatever the caller puts before it); later applies do not change
    /// what it writes.
    pub fn snapshot_writer(&self, mut out: Vec<u8>) -> Result<StoreSnapshotWriter, SnapshotError> {
        let (chunks, keys_left) = self.kv.frozen_keys();
        // Sized up front: grown by doubling, a buffer of tens of MB is
        // copied about twice over. The encoding adds a few bytes of
        // revisions and lengths to each key and value counted in bytes_used.
        let used = usize::try_from(self.bytes_used()).unwrap_or(usize::MAX);
        out.reserve(used.saturating_add(used / 4).saturating_add(4_096));
        let start = out.len();
        let out = postcard::to_extend(&keys_left, out).map_err(encoding)?;
        let crc = crc32c::crc32c(&out[start..]);
        let rest = (self.kv.events(), self.kv.revision(), self.kv.compact_revision(), &self.leases);
        let mut tail = postcard::to_allocvec(&rest).map_err(encoding)?;
        let ttl_ms = self.leases.ttl_ms_section();
        if !ttl_ms.is_empty() {
            tail = postcard::to_extend(ttl_ms, tail).map_err(encoding)?;
        }
        Ok(StoreSnapshotWriter { chunks: chunks.into(), written_to: None, keys_left, out, start, crc, tail })
    }

    /// The payload of [`Store::snapshot`]'s record, written in one go.
    pub fn snapshot_payload(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(self.snapshot_writer(Vec::new())?.finish()?.0)
    }
}

impl StoreSnapshotWriter {
    /// Writes up to `keys_max` more keys; returns whether all are written.
    pub fn write(&mut self, keys_max: usize) -> Result<bool, SnapshotError> {
        let (mut budget, before) = (keys_max, self.out.len());
        while budget > 0 {
            let Some(chunk) = self.chunks.front() else { break };
            let from = self.written_to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut last = None;
            for (key, history) in chunk.range((from, Bound::Unbounded)).take(budget) {
                self.out =
                    postcard::to_extend(&(KeyRef(key), &**history), std::mem::take(&mut self.out)).map_err(encoding)?;
                last = Some(key);
                budget -= 1;
                self.keys_left -= 1;
            }
            match last {
                // Budget left over: the chunk is done.
                _ if budget > 0 => {
                    self.chunks.pop_front();
                    self.written_to = None;
                }
                Some(key) => self.written_to = Some(key.clone()),
                None => unreachable!("a chunk with no key left ends with budget to spare"),
            }
            self.check_len()?;
        }
        self.crc = crc32c::crc32c_append(self.crc, &self.out[before..]);
        Ok(self.chunks.is_empty())
    }

    /// Keys still to write.
    pub fn keys_left(&self) -> usize {
        self.keys_left
    }

    fn check_len(&self) -> Result<(), SnapshotError> {
        let bytes = (self.out.len() - self.start) as u64;
        if bytes > u64::from(SNAPSHOT_PAYLOAD_BYTES_MAX) {
            return Err(SnapshotError::TooLarge { bytes });
        }
        Ok(())
    }

    /// Writes the keys left, in this call, then returns the caller's bytes
    /// followed by the payload, and the payload's crc32c.
    pub fn finish(mut self) -> Result<(Vec<u8>, u32), SnapshotError> {
        self.write(usize::MAX)?;
        assert!(self.chunks.is_empty() && self.keys_left == 0, "every key is written before the tail");
        self.out.extend_from_slice(&self.tail);
        self.check_len()?;
        Ok((self.out, crc32c::crc32c_append(self.crc, &self.tail)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::keyspace::{ImageKey, KeyspaceImage};
    use crate::request::*;
    use crate::snapshot::StoreImage;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Put(u16, u8),
        PutOnLease(u16),
        Delete(u16, u16),
        GrantMs,
        Compact(u8),
        /// Write this many keys of the snapshot in progress.
        Write(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        // 0..700 keys: enough for the keys to span several chunks.
        prop_oneof![
            8 => (0..700u16, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            1 => (0..700u16).prop_map(Op::PutOnLease),
            2 => (0..700u16, 1..40u16).prop_map(|(k, n)| Op::Delete(k, n)),
            1 => Just(Op::GrantMs),
            1 => any::<u8>().prop_map(Op::Compact),
            3 => (0..300u16).prop_map(Op::Write),
        ]
    }

    fn key(k: u16) -> Vec<u8> {
        format!("k{k:03}").into_bytes()
    }

    fn apply(store: &mut Store, op: &Op) {
        let request = match *op {
            Op::Put(k, v) => Request::Put(PutRequest { key: key(k), value: vec![v; 3], ..PutRequest::default() }),
            Op::PutOnLease(k) => {
                let lease = store.lease_leases().leases.first().copied().unwrap_or(0);
                Request::Put(PutRequest { key: key(k), value: vec![1], lease, ..PutRequest::default() })
            }
            Op::Delete(k, n) => {
                Request::DeleteRange(DeleteRangeRequest { key: key(k), range_end: key(k + n), prev_kv: false })
            }
            Op::GrantMs => Request::LeaseGrantMs(LeaseGrantMsRequest { ttl_ms: 2_500, id: 0 }),
            Op::Compact(fraction) => {
                let floor = store.compact_revision().map_or(1, |c| c + 1);
                let at = floor + store.revision().saturating_sub(floor) * u64::from(fraction) / 255;
                Request::Compact(CompactionRequest { revision: at.min(store.revision()), physical: false })
            }
            Op::Write(_) => unreachable!("not a request"),
        };
        // Refusals (a compaction at the point already, say) change nothing.
        let _ = store.apply(&request);
    }

    /// The payload as postcard lays out the owned image: an encoding
    /// independent of the writer's.
    fn reference_payload(store: &Store) -> Vec<u8> {
        let keys = store.kv.iter_keys().map(|(k, h)| (ImageKey(k.clone()), h.clone())).collect();
        let kv = &store.kv;
        let keyspace = KeyspaceImage {
            keys,
            events: kv.events().iter().cloned().collect(),
            revision: kv.revision(),
            compact_revision: kv.compact_revision(),
        };
        let image = StoreImage { keyspace, leases: store.leases.clone() };
        let mut payload = postcard::to_allocvec(&image).expect("encodes");
        let ttl_ms = store.leases.ttl_ms_section();
        if !ttl_ms.is_empty() {
            payload = postcard::to_extend(ttl_ms, payload).expect("encodes");
        }
        payload
    }

    proptest! {
        /// However the store is written while a snapshot is in progress,
        /// and in whatever steps, the snapshot holds the store as frozen.
        #[test]
        fn a_snapshot_written_in_steps_holds_the_store_as_it_was_frozen(
            before in prop::collection::vec(op(), 0..400),
            during in prop::collection::vec(op(), 0..400),
        ) {
            let mut store = Store::new(StoreConfig { lease_ttl_ms_min: 500, ..StoreConfig::default() });
            for op in before.iter().filter(|op| !matches!(op, Op::Write(_))) {
                apply(&mut store, op);
            }
            let frozen = store.clone();
            let want = reference_payload(&frozen);
            let mut writer = store.snapshot_writer(b"before".to_vec()).expect("encodes");
            for op in &during {
                match *op {
                    Op::Write(n) => drop(writer.write(usize::from(n)).expect("encodes")),
                    _ => apply(&mut store, op),
                }
            }
            while !writer.write(7).expect("encodes") {}
            prop_assert_eq!(writer.keys_left(), 0);
            let (got, crc) = writer.finish().expect("encodes");
            prop_assert_eq!(&got[..6], b"before");
            prop_assert!(got[6..] == want[..], "the written snapshot differs from the frozen store's");
            prop_assert_eq!(crc, crc32c::crc32c(&want));
            prop_assert_eq!(Store::restore(&frozen.snapshot().expect("encodes"), frozen.config().clone()), Ok(frozen));
        }
    }
}
