//! etcd's key-range convention, decoded once.
//!
//! In: a request's `key` and `range_end`. Out: the set of keys it names:
//! an empty `range_end` means the single key `key`; `"\0"` means every key
//! greater than or equal to `key`; anything else is the half-open interval
//! `[key, range_end)`, empty when `range_end <= key` (etcd returns nothing
//! then rather than an error). A prefix is `[prefix, prefix_end(prefix))`.

use serde::{Deserialize, Serialize};
use std::ops::Bound;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum End {
    /// Only `start` itself.
    Single,
    /// Every key `>= start`.
    Unbounded,
    /// Keys in `[start, end)`.
    Before(Vec<u8>),
}

/// Lower and upper bound of a non-empty key range.
pub type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// A set of keys named as etcd names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    start: Vec<u8>,
    end: End,
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        let end = match range_end {
            [] => End::Single,
            [0] => End::Unbounded,
            end => End::Before(end.to_vec()),
        };
        KeyRange { start: key.to_vec(), end }
    }

    pub fn single(key: &[u8]) -> KeyRange {
        KeyRange::new(key, &[])
    }

    pub fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange::new(prefix, &prefix_end(prefix))
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            End::Single => key == self.start.as_slice(),
            End::Unbounded => key >= self.start.as_slice(),
            End::Before(end) => key >= self.start.as_slice() && key < end.as_slice(),
        }
    }

    /// Bounds for `BTreeMap::range`, or `None` when the range holds no key
    /// (`BTreeMap::range` panics on an inverted interval, and clients may send one).
    pub fn bounds(&self) -> Option<KeyBounds<'_>> {
        let start = Bound::Included(self.start.as_slice());
        match &self.end {
            End::Single => Some((start, Bound::Included(self.start.as_slice()))),
            End::Unbounded => Some((start, Bound::Unbounded)),
            End::Before(end) if end.as_slice() <= self.start.as_slice() => None,
            End::Before(end) => Some((start, Bound::Excluded(end.as_slice()))),
        }
    }
}

/// The `range_end` that makes `[prefix, range_end)` the keys starting with
/// `prefix` (clientv3's `GetPrefixRangeEnd`): the prefix with its last byte
/// below 0xff incremented and what follows dropped, or `"\0"` (all keys) when
/// no such byte exists.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_range_end_names_one_key() {
        let r = KeyRange::new(b"a", b"");
        assert!(r.contains(b"a"));
        assert!(!r.contains(b"a\0"));
        assert!(!r.contains(b""));
    }

    #[test]
    fn nul_range_end_names_every_key_from_start() {
        let r = KeyRange::new(b"b", b"\0");
        assert!(!r.contains(b"a\xff"));
        assert!(r.contains(b"b"));
        assert!(r.contains(b"\xff\xff"));
    }

    #[test]
    fn inverted_interval_is_empty_and_has_no_bounds() {
        let r = KeyRange::new(b"b", b"a");
        assert!(!r.contains(b"b"));
        assert_eq!(r.bounds(), None);
        assert_eq!(KeyRange::new(b"b", b"b").bounds(), None);
    }

    #[test]
    fn prefix_end_increments_last_byte_below_ff() {
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
        let p = KeyRange::prefix(b"a\xff");
        assert!(p.contains(b"a\xff\x00\x01"));
        assert!(!p.contains(b"b"));
    }
}
