//! The search's memory of where it has been (Lowe's memoization, as Porcupine
//! does it): a set of (operations linearized so far, possible key states).
//!
//! In: a configuration the search reached.
//! Out: whether it is new; the search abandons configurations it has already
//! explored, since their futures are the same.
//!
//! The set of linearized operations is a bitset with a running hash (each
//! operation XORs its own fixed 64-bit code in or out), so a step costs O(1)
//! hashing for the set plus the hash of the small state list.

use crate::model::KeyState;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The operations linearized so far.
#[derive(Clone, Debug)]
pub struct Linearized {
    words: Vec<u64>,
    hash: u64,
    len: usize,
}

impl Linearized {
    pub fn new(ops_len: usize) -> Self {
        Linearized { words: vec![0; ops_len.div_ceil(64)], hash: 0, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, op: usize) -> bool {
        self.words[op / 64] & (1 << (op % 64)) != 0
    }

    pub fn insert(&mut self, op: usize) {
        assert!(!self.contains(op), "an operation is linearized once per path");
        self.words[op / 64] |= 1 << (op % 64);
        self.hash ^= code(op);
        self.len += 1;
    }

    pub fn remove(&mut self, op: usize) {
        assert!(self.contains(op), "only a linearized operation is taken back");
        self.words[op / 64] &= !(1 << (op % 64));
        self.hash ^= code(op);
        self.len -= 1;
    }
}

/// splitmix64 of the operation's index: a fixed, well-spread code per op.
fn code(op: usize) -> u64 {
    let mut z = (op as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One configuration: the linearized set's bitset words and the states.
type Configuration = (Box<[u64]>, Box<[KeyState]>);

/// Configurations seen, bucketed by hash.
#[derive(Debug, Default)]
pub struct Memo {
    buckets: BTreeMap<u64, Vec<Configuration>>,
}

impl Memo {
    /// Records (`linearized`, `states`); false if it was already recorded.
    pub fn insert(&mut self, linearized: &Linearized, states: &[KeyState]) -> bool {
        let mut hasher = DefaultHasher::new();
        states.hash(&mut hasher);
        let hash = hasher.finish() ^ linearized.hash;
        let bucket = self.buckets.entry(hash).or_default();
        let seen = bucket.iter().any(|(words, s)| **words == *linearized.words && **s == *states);
        if !seen {
            bucket.push((linearized.words.clone().into_boxed_slice(), states.into()));
        }
        !seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_set_reached_in_another_order_is_not_new() {
        let state = [KeyState::default()];
        let mut memo = Memo::default();
        let mut a = Linearized::new(130);
        a.insert(3);
        a.insert(129);
        let mut b = Linearized::new(130);
        b.insert(129);
        b.insert(3);
        assert!(memo.insert(&a, &state));
        assert!(!memo.insert(&b, &state));
        b.remove(3);
        assert!(memo.insert(&b, &state), "a different set is new");
        let other = [KeyState { floor: 1, kv: None }];
        assert!(memo.insert(&a, &other), "the same set with another state is new");
    }
}
