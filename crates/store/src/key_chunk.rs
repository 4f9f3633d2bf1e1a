//! One chunk of the keyspace's index: a few hundred keys in a sorted `Vec`.
//!
//! In: lookups, inserts, removals and range scans by byte key. Out: the
//! same answers as a `BTreeMap<Vec<u8>, V>`, in key order.
//!
//! Why not a `BTreeMap`: each of its comparisons follows a key's pointer,
//! one likely cache miss per step, and a put looked keys up on every
//! replica's event loop two or three times (about a third of a station's
//! apply time at 100,000 keys). Here each key's first 8 bytes are kept as a
//! number in an array of their own beside the slots; the binary search
//! compares those and the keys' lengths ([`below`]), and reads a slot only
//! where two prefixes tie, so it touches 8 bytes a step instead of a 40-byte
//! slot: a chunk's prefixes fit in 2 KiB, a few cache lines for the whole
//! search. An insert or removal moves at most a chunk's worth of slots,
//! which costs less than the misses it saves.

use std::ops::Bound;

/// A key's first 8 bytes, big-endian, zero-padded: keys in byte order are
/// in (not strictly) increasing order of this number.
pub(crate) fn prefix8(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot<V> {
    key: Vec<u8>,
    value: V,
}

/// Whether key `a`, whose `prefix8` is `prefix_a`, sorts before key `b`.
pub(crate) fn below(prefix_a: u64, a: &[u8], prefix_b: u64, b: &[u8]) -> bool {
    if prefix_a != prefix_b {
        return prefix_a < prefix_b;
    }
    // Equal prefixes: two keys of at most 8 bytes are then one a prefix
    // of the other, and their lengths (kept beside the pointer) order them.
    if a.len() <= 8 && b.len() <= 8 { a.len() < b.len() } else { a < b }
}

/// Keys in ascending order, each with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyChunk<V> {
    /// `prefix8` of each slot's key, in the same order: `prefixes[i]`
    /// belongs to `slots[i]`, and the two always have the same length.
    prefixes: Vec<u64>,
    slots: Vec<Slot<V>>,
}

impl<V> Default for KeyChunk<V> {
    fn default() -> KeyChunk<V> {
        KeyChunk { prefixes: Vec::new(), slots: Vec::new() }
    }
}

impl<V> KeyChunk<V> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `Ok(i)`: `key` is at slot `i`; `Err(i)`: it would go there.
    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let prefix = prefix8(key);
        // Bisection over the prefixes; a slot is read only on a tie.
        let (mut low, mut high) = (0, self.prefixes.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let slot_prefix = self.prefixes[mid];
            let slot_below = slot_prefix < prefix
                || (slot_prefix == prefix && below(slot_prefix, &self.slots[mid].key, prefix, key));
            if slot_below {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        match self.prefixes.get(low) {
            Some(&p) if p == prefix && self.holds(low, key) => Ok(low),
            _ => Err(low),
        }
    }

    /// Whether slot `at`, whose prefix is `key`'s, holds `key`.
    fn holds(&self, at: usize, key: &[u8]) -> bool {
        let slot_key = &self.slots[at].key;
        slot_key.len() == key.len() && (key.len() <= 8 || *slot_key == key)
    }

    fn insert_at(&mut self, at: usize, key: Vec<u8>, value: V) {
        self.prefixes.insert(at, prefix8(&key));
        self.slots.insert(at, Slot { key, value });
        assert_eq!(self.prefixes.len(), self.slots.len(), "a prefix for every slot");
    }

    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.search(key).ok().map(|at| &self.slots[at].value)
    }

    /// The slot holding `key`, for [`KeyChunk::value_at`] and
    /// [`KeyChunk::value_at_mut`]: a caller that reads a value, then maybe
    /// changes it, searches once.
    pub fn position(&self, key: &[u8]) -> Option<usize> {
        self.search(key).ok()
    }

    pub fn value_at(&self, at: usize) -> &V {
        &self.slots[at].value
    }

    pub fn value_at_mut(&mut self, at: usize) -> &mut V {
        &mut self.slots[at].value
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.search(key).is_ok()
    }

    /// The value of `key`, inserted as `make()` first if absent; and
    /// whether it was inserted. One search.
    pub fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> (&mut V, bool) {
        match self.search(key) {
            Ok(at) => (&mut self.slots[at].value, false),
            Err(at) => {
                self.insert_at(at, key.to_vec(), make());
                (&mut self.slots[at].value, true)
            }
        }
    }

    pub fn insert(&mut self, key: Vec<u8>, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.slots[at].value, value)),
            Err(at) => {
                self.insert_at(at, key, value);
                None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let at = self.search(key).ok()?;
        self.prefixes.remove(at);
        Some(self.slots.remove(at).value)
    }

    /// Moves the keys from position `at` on into a new chunk; returns it
    /// with its first key.
    pub fn split_off(&mut self, at: usize) -> (Vec<u8>, KeyChunk<V>) {
        assert!(at > 0 && at < self.slots.len(), "a split leaves keys on both sides");
        let upper = KeyChunk { prefixes: self.prefixes.split_off(at), slots: self.slots.split_off(at) };
        (upper.slots[0].key.clone(), upper)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Vec<u8>, &V)> + '_ {
        self.slots.iter().map(|slot| (&slot.key, &slot.value))
    }

    /// Entries with keys within `bounds`, in key order.
    pub fn range<'a>(
        &'a self,
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
    ) -> impl DoubleEndedIterator<Item = (&'a Vec<u8>, &'a V)> + 'a {
        let first = match bounds.0 {
            Bound::Included(k) => self.search(k).unwrap_or_else(|at| at),
            Bound::Excluded(k) => self.search(k).map_or_else(|at| at, |at| at + 1),
            Bound::Unbounded => 0,
        };
        let end = match bounds.1 {
            Bound::Included(k) => self.search(k).map_or_else(|at| at, |at| at + 1),
            Bound::Excluded(k) => self.search(k).unwrap_or_else(|at| at),
            Bound::Unbounded => self.slots.len(),
        };
        // Bounds the wrong way round hold no key (a `BTreeMap` panics).
        let end = end.max(first);
        self.slots[first..end].iter().map(|slot| (&slot.key, &slot.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn key(k: u16) -> Vec<u8> {
        // Long keys that tie on their first 8 bytes, and short ones that
        // are prefixes of others.
        match k % 3 {
            0 => [b"same8byt".as_slice(), &k.to_be_bytes()].concat(),
            1 => k.to_be_bytes()[..1].to_vec(),
            _ => k.to_be_bytes().to_vec(),
        }
    }

    fn bound(k: Option<u16>, included: bool) -> Bound<Vec<u8>> {
        match k {
            None => Bound::Unbounded,
            Some(k) if included => Bound::Included(key(k)),
            Some(k) => Bound::Excluded(key(k)),
        }
    }

    fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
        b.as_ref().map(Vec::as_slice)
    }

    proptest! {
        /// Inserts, removals and in-place changes give the `BTreeMap`'s
        /// answers, ranges included (empty where its bounds cross).
        #[test]
        fn a_key_chunk_answers_as_a_btree_map(
            ops in prop::collection::vec((0..3u8, 0..600u16, any::<u8>()), 1..800),
            ranges in prop::collection::vec((any::<Option<u16>>(), any::<bool>(), any::<Option<u16>>(), any::<bool>()), 8),
        ) {
            let (mut chunk, mut reference) = (KeyChunk::default(), BTreeMap::new());
            for &(op, k, v) in &ops {
                let (k, v) = (k % 600, v);
                match op {
                    0 => prop_assert_eq!(chunk.insert(key(k), v), reference.insert(key(k), v)),
                    1 => prop_assert_eq!(chunk.remove(&key(k)), reference.remove(&key(k))),
                    _ => {
                        let (value, inserted) = chunk.get_or_insert_with(&key(k), || v);
                        prop_assert_eq!(inserted, !reference.contains_key(&key(k)));
                        *value = value.wrapping_add(1);
                        *reference.entry(key(k)).or_insert(v) = *value;
                    }
                }
                prop_assert_eq!(chunk.len(), reference.len());
            }
            prop_assert!(chunk.iter().eq(reference.iter()));
            for (lo, lo_in, hi, hi_in) in &ranges {
                let (lo, hi) = (bound(lo.map(|k| k % 600), *lo_in), bound(hi.map(|k| k % 600), *hi_in));
                let got: Vec<_> = chunk.range((as_ref(&lo), as_ref(&hi))).collect();
                let crossed = match (&lo, &hi) {
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                        a > b || (a == b && !(matches!(lo, Bound::Included(_)) && matches!(hi, Bound::Included(_))))
                    }
                    _ => false,
                };
                let want: Vec<_> = if crossed {
                    Vec::new()
                } else {
                    reference.range::<[u8], _>((as_ref(&lo), as_ref(&hi))).collect()
                };
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn a_split_moves_the_upper_keys_and_names_the_first() {
        let mut chunk = KeyChunk::default();
        for k in 0..10u16 {
            chunk.insert(k.to_be_bytes().to_vec(), k);
        }
        let (first, upper) = chunk.split_off(4);
        assert_eq!(first, 4u16.to_be_bytes().to_vec());
        assert_eq!(chunk.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(upper.iter().map(|(_, v)| *v).collect::<Vec<_>>(), (4..10).collect::<Vec<_>>());
    }
}
