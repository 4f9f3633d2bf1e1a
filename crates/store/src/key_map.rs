//! An ordered map from byte keys whose clone is cheap: the keyspace's index.
//!
//! In: inserts, lookups, removals and range scans, as on a `BTreeMap`.
//! Out: the same answers, plus [`KeyMap::frozen_chunks`], the whole map as
//! shared chunks that later writes do not change.
//!
//! Why: a snapshot of 100,000 keys takes tens of milliseconds to encode, and
//! the replica must not stop applying and answering for that long. With
//! the keys split into chunks behind `Arc`s, freezing the map costs one
//! `Arc` per chunk; a write to a chunk a snapshot still holds copies that
//! chunk first (`Arc::make_mut`), so the snapshot keeps the state it froze
//! while the snapshot encodes a few keys per turn. Each chunk covers the
//! keys from its bound up to the next chunk's bound; the first chunk's
//! bound is the empty key, so every key has exactly one home.

use crate::key_chunk::{KeyChunk, below, prefix8};
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

/// Keys in one chunk, at most. A write to a shared chunk copies this many
/// entries at worst (the keyspace keeps each history behind an `Arc`, so a
/// few microseconds); freezing 100,000 keys costs a few hundred `Arc` clones.
const CHUNK_LEN_MAX: usize = 256;

#[derive(Clone)]
pub(crate) struct KeyMap<V> {
    /// Chunks with their lower bounds, ascending; never empty, and the first
    /// bound is `[]`. A `Vec` searched by bisection: a few hundred chunks,
    /// looked up on every read and write, rarely split or dropped.
    chunks: Vec<(Bound8, Arc<KeyChunk<V>>)>,
    len: usize,
}

/// A chunk's lower bound with its first 8 bytes alongside, ordered as a
/// chunk's slots are (`key_chunk::below`): the bisection follows a bound's
/// pointer only where prefixes tie.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bound8 {
    prefix: u64,
    key: Vec<u8>,
}

impl Bound8 {
    fn new(key: Vec<u8>) -> Bound8 {
        Bound8 { prefix: prefix8(&key), key }
    }

    /// Whether this bound is at most `key`, whose prefix is `prefix`.
    fn at_most(&self, key: &[u8], prefix: u64) -> bool {
        !below(prefix, key, self.prefix, &self.key)
    }
}

impl<V> Default for KeyMap<V> {
    fn default() -> KeyMap<V> {
        KeyMap { chunks: vec![(Bound8::new(Vec::new()), Arc::new(KeyChunk::default()))], len: 0 }
    }
}

impl<V: Clone> KeyMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// The index of the chunk that holds (or would hold) `key`.
    fn home(&self, key: &[u8]) -> usize {
        let prefix = prefix8(key);
        let above = self.chunks.partition_point(|(bound, _)| bound.at_most(key, prefix));
        assert!(above > 0, "the first chunk's bound is [] and every key is at least that");
        above - 1
    }

    /// The chunk at `index`, copied first if a freeze still shares it.
    fn chunk_mut(&mut self, index: usize) -> &mut KeyChunk<V> {
        Arc::make_mut(&mut self.chunks[index].1)
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.chunks[self.home(key)].1.get(key)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.get_mut_if(key, |_| true)
    }

    /// The value of `key` to change when `change` says so of its value as
    /// it is: the chunk is copied (if shared) only then, never for a key it
    /// lacks. One search: a copy keeps the slots where they were.
    pub fn get_mut_if(&mut self, key: &[u8], change: impl FnOnce(&V) -> bool) -> Option<&mut V> {
        let home = self.home(key);
        let at = self.chunks[home].1.position(key)?;
        if !change(self.chunks[home].1.value_at(at)) {
            return None;
        }
        Some(self.chunk_mut(home).value_at_mut(at))
    }

    /// The value of `key`, inserted as `V::default()` if absent.
    pub fn get_or_default(&mut self, key: &[u8]) -> &mut V
    where
        V: Default,
    {
        let home = self.home(key);
        if self.chunks[home].1.len() < CHUNK_LEN_MAX {
            // No split can follow: one search of the chunk.
            let (value, inserted) = Arc::make_mut(&mut self.chunks[home].1).get_or_insert_with(key, V::default);
            self.len += usize::from(inserted);
            return value;
        }
        if !self.chunks[home].1.contains_key(key) {
            self.insert(key.to_vec(), V::default());
        }
        self.get_mut(key).expect("present or just inserted") // the insert may have split the chunk
    }

    pub fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        let home = self.home(&key);
        let chunk = Arc::make_mut(&mut self.chunks[home].1);
        let old = chunk.insert(key, value);
        if old.is_some() {
            return old;
        }
        if chunk.len() > CHUNK_LEN_MAX {
            let (at, upper) = chunk.split_off(CHUNK_LEN_MAX / 2);
            assert!(at > self.chunks[home].0.key, "a chunk splits above its bound");
            self.chunks.insert(home + 1, (Bound8::new(at), Arc::new(upper)));
        }
        self.len += 1;
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let home = self.home(key);
        self.chunks[home].1.get(key)?;
        let chunk = self.chunk_mut(home);
        let old = chunk.remove(key).expect("looked up above");
        // An empty chunk other than the first goes; its keys' home becomes
        // the chunk before it, which covers them by its bound.
        if chunk.is_empty() && home > 0 {
            self.chunks.remove(home);
        }
        self.len -= 1;
        Some(old)
    }

    /// Entries with keys within `bounds`, in key order.
    pub fn range<'a>(
        &'a self,
        bounds: (Bound<&'a [u8]>, Bound<&'a [u8]>),
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a V)> + 'a {
        let first = match bounds.0 {
            Bound::Included(k) | Bound::Excluded(k) => self.home(k),
            Bound::Unbounded => 0,
        };
        let within = move |bound: &Bound8| match bounds.1 {
            Bound::Included(end) => bound.key.as_slice() <= end,
            Bound::Excluded(end) => bound.key.as_slice() < end,
            Bound::Unbounded => true,
        };
        self.chunks[first..]
            .iter()
            .take_while(move |(bound, _)| within(bound))
            .flat_map(move |(_, chunk)| chunk.range(bounds))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> + '_ {
        self.chunks.iter().flat_map(|(_, chunk)| chunk.iter())
    }

    /// Every chunk in key order, shared: what the map holds now, whatever
    /// is written after.
    pub fn frozen_chunks(&self) -> Vec<Arc<KeyChunk<V>>> {
        self.chunks.iter().map(|(_, chunk)| chunk.clone()).collect()
    }

    /// Keeps the entries `keep` says yes to (a walk over every key).
    #[cfg(test)]
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut V) -> bool) {
        let keys: Vec<Vec<u8>> = self.iter().map(|(k, _)| k.clone()).collect();
        for key in keys {
            let value = self.get_mut(&key).expect("listed above");
            if !keep(&key, value) {
                self.remove(&key);
            }
        }
    }
}

/// Equal contents, wherever the chunks happen to split.
impl<V: Clone + PartialEq> PartialEq for KeyMap<V> {
    fn eq(&self, other: &KeyMap<V>) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Clone + Eq> Eq for KeyMap<V> {}

impl<V: Clone + fmt::Debug> fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        Update(u16, u8),
        /// Sets the value only where it is even.
        UpdateIfEven(u16, u8),
        Freeze,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Keys over 0..1200 so chunks split (256) and empty out again.
        prop_oneof![
            5 => (0..1200u16, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0..1200u16).prop_map(Op::Remove),
            2 => (0..1200u16, any::<u8>()).prop_map(|(k, v)| Op::Update(k, v)),
            2 => (0..1200u16, any::<u8>()).prop_map(|(k, v)| Op::UpdateIfEven(k, v)),
            1 => Just(Op::Freeze),
        ]
    }

    fn key(k: u16) -> Vec<u8> {
        if k.is_multiple_of(5) {
            // Longer than the bounds' 8-byte prefixes, and all alike there.
            return [b"prefix8:".as_slice(), &k.to_be_bytes()].concat();
        }
        // Lengths differ so that prefixes of other keys occur.
        let mut key = k.to_be_bytes().to_vec();
        key.truncate(1 + usize::from(k.is_multiple_of(3)));
        key.push((k % 7) as u8);
        key
    }

    fn bounds(a: &[u8], b: &[u8], kind: u8) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let (lo, hi) = if a <= b { (a.to_vec(), b.to_vec()) } else { (b.to_vec(), a.to_vec()) };
        match kind % 4 {
            0 => (Bound::Included(lo), Bound::Excluded(hi)),
            1 => (Bound::Excluded(lo), Bound::Included(hi)),
            2 => (Bound::Included(lo), Bound::Unbounded),
            _ => (Bound::Unbounded, Bound::Included(hi)),
        }
    }

    fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        match b {
            Bound::Included(k) => Bound::Included(k.as_slice()),
            Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    proptest! {
        /// The map answers as a `BTreeMap` does, and what a freeze took
        /// stays what the map held then, however the map is written after.
        #[test]
        fn a_key_map_is_a_btree_map_whose_frozen_chunks_do_not_change(
            ops in prop::collection::vec(op(), 1..3000),
            probes in prop::collection::vec((0..1200u16, 0..1200u16, any::<u8>()), 8),
        ) {
            let (mut map, mut reference) = (KeyMap::default(), BTreeMap::new());
            // Each freeze's chunks, with what the map held then.
            let mut frozen = Vec::new();
            for op in &ops {
                match *op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(key(k), v), reference.insert(key(k), v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&key(k)), reference.remove(&key(k))),
                    Op::Update(k, v) => {
                        *map.get_or_default(&key(k)) = v;
                        *reference.entry(key(k)).or_default() = v;
                    }
                    Op::UpdateIfEven(k, v) => {
                        if let Some(value) = map.get_mut_if(&key(k), |old| old % 2 == 0) {
                            *value = v;
                        }
                        if let Some(value) = reference.get_mut(&key(k)).filter(|old| **old % 2 == 0) {
                            *value = v;
                        }
                    }
                    Op::Freeze => frozen.push((map.frozen_chunks(), reference.clone())),
                }
                prop_assert_eq!(map.len(), reference.len());
            }
            prop_assert!(map.iter().eq(reference.iter()));
            for (a, b, kind) in &probes {
                let (lo, hi) = bounds(&key(*a), &key(*b), *kind);
                let got: Vec<_> = map.range((as_ref(&lo), as_ref(&hi))).collect();
                let want: Vec<_> = reference.range::<[u8], _>((as_ref(&lo), as_ref(&hi))).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(map.get(&key(*a)), reference.get(&key(*a)));
            }
            for (chunks, then) in &frozen {
                prop_assert!(chunks.iter().flat_map(|c| c.iter()).eq(then.iter()));
            }
        }
    }

    #[test]
    fn a_write_to_a_frozen_chunk_copies_it_and_others_stay_shared() {
        let mut map = KeyMap::default();
        for k in 0..1000u32 {
            map.insert(k.to_be_bytes().to_vec(), k);
        }
        let frozen = map.frozen_chunks();
        assert!(frozen.len() >= 1000 / CHUNK_LEN_MAX, "1000 keys span several chunks");
        *map.get_mut(&7u32.to_be_bytes()).expect("inserted") = 70;
        let now = map.frozen_chunks();
        let shared = frozen.iter().zip(&now).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert_eq!(shared, frozen.len() - 1, "only the written chunk was copied");
        assert_eq!(frozen[0].get(&7u32.to_be_bytes()[..]), Some(&7));
    }
}
