//! What the per-key model knows of a revision it has not seen: an interval.
//!
//! In: facts about a revision (it is at least, at most, equal to, or compares
//! so with a number).
//! Out: the narrowed interval, or `None` if the facts contradict each other.
//!
//! A write that timed out may have taken effect, but nobody saw its revision;
//! later operations bound it (a read at header h saw it, so it is <= h) and a
//! read that returns the key's mod_revision pins it.

use crate::history::CompareOp;

/// Revisions `lo..=hi`, never empty. `lo == hi` is a known revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevRange {
    lo: u64,
    hi: u64,
}

impl RevRange {
    pub fn exactly(revision: u64) -> Self {
        RevRange { lo: revision, hi: revision }
    }

    pub fn at_least(revision: u64) -> Self {
        RevRange { lo: revision, hi: u64::MAX }
    }

    pub fn lo(self) -> u64 {
        self.lo
    }

    pub fn known(self) -> Option<u64> {
        (self.lo == self.hi).then_some(self.lo)
    }

    fn new(lo: u64, hi: u64) -> Option<Self> {
        (lo <= hi).then_some(RevRange { lo, hi })
    }

    pub fn at_most(self, revision: u64) -> Option<Self> {
        Self::new(self.lo, self.hi.min(revision))
    }

    pub fn pin(self, revision: u64) -> Option<Self> {
        (self.lo <= revision && revision <= self.hi).then_some(Self::exactly(revision))
    }

    /// Splits the interval into the part where `self <op> other` holds and the
    /// part where it does not. `!=` cannot cut a point out of the middle of an
    /// interval, so its "holds" part may keep `other`: the model then accepts
    /// a little more than etcd would, never less.
    pub fn split(self, op: CompareOp, other: u64) -> (Option<Self>, Option<Self>) {
        let equal = self.pin(other);
        let unequal = if self.known() == Some(other) {
            None
        } else if self.lo == other {
            Self::new(other + 1, self.hi)
        } else if self.hi == other {
            Self::new(self.lo, other - 1)
        } else {
            Some(self)
        };
        let less = other.checked_sub(1).and_then(|below| Self::new(self.lo, self.hi.min(below)));
        let not_less = Self::new(self.lo.max(other), self.hi);
        let greater = other.checked_add(1).and_then(|above| Self::new(self.lo.max(above), self.hi));
        let not_greater = Self::new(self.lo, self.hi.min(other));
        match op {
            CompareOp::Equal => (equal, unequal),
            CompareOp::NotEqual => (unequal, equal),
            CompareOp::Less => (less, not_less),
            CompareOp::Greater => (greater, not_greater),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_of_a_known_revision_decides_the_compare() {
        let five = RevRange::exactly(5);
        assert_eq!(five.split(CompareOp::Equal, 5), (Some(five), None));
        assert_eq!(five.split(CompareOp::NotEqual, 5), (None, Some(five)));
        assert_eq!(five.split(CompareOp::Less, 6), (Some(five), None));
        assert_eq!(five.split(CompareOp::Greater, 5), (None, Some(five)));
    }

    #[test]
    fn split_of_an_interval_narrows_both_sides() {
        let some = RevRange { lo: 3, hi: 9 };
        assert_eq!(some.split(CompareOp::Less, 5), (RevRange::new(3, 4), RevRange::new(5, 9)));
        assert_eq!(some.split(CompareOp::Greater, 5), (RevRange::new(6, 9), RevRange::new(3, 5)));
        assert_eq!(some.split(CompareOp::Equal, 3), (Some(RevRange::exactly(3)), RevRange::new(4, 9)));
        assert_eq!(some.split(CompareOp::Equal, 10), (None, Some(some)));
    }

    #[test]
    fn pinning_outside_the_interval_is_a_contradiction() {
        let some = RevRange::at_least(4);
        assert_eq!(some.pin(3), None);
        assert_eq!(some.pin(4), Some(RevRange::exactly(4)));
        assert_eq!(some.at_most(3), None);
    }
}
