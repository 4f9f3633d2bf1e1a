//! The term of every index of the log, kept as runs.
//!
//! In: appends (index, term), suffix truncations and snapshots.
//! Out: the term at an index and the last term, so the WAL refuses an entry
//! whose term is below the one before it (recovery would reject that log).
//! One run per term change keeps this to a few words per election.

use crate::entry::SnapshotMeta;

#[derive(Debug)]
pub(crate) struct TermRuns {
    /// The snapshot the log starts after.
    base: SnapshotMeta,
    /// `(first index, term)` of each run above the base, ascending.
    runs: Vec<(u64, u64)>,
}

impl TermRuns {
    pub(crate) fn new(base: SnapshotMeta) -> TermRuns {
        TermRuns { base, runs: Vec::new() }
    }

    pub(crate) fn term_last(&self) -> u64 {
        self.runs.last().map_or(self.base.term, |r| r.1)
    }

    /// The term of the entry at `index`, known for the base and above it.
    #[cfg(test)]
    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        if index < self.base.index {
            return None;
        }
        let i = self.runs.partition_point(|r| r.0 <= index);
        Some(if i == 0 { self.base.term } else { self.runs[i - 1].1 })
    }

    pub(crate) fn append(&mut self, index: u64, term: u64) {
        // Recovery may hand in a first entry below the snapshot's term (raft
        // reconciles those); past that, the caller checked the order.
        assert!(self.runs.last().is_none_or(|r| term >= r.1), "terms never decrease along the log");
        assert!(index > self.base.index, "entries are appended above the snapshot");
        if term != self.term_last() {
            self.runs.push((index, term));
        }
    }

    /// Forgets every index from `index_from` on.
    pub(crate) fn truncate(&mut self, index_from: u64) {
        assert!(index_from > self.base.index, "the snapshot is never truncated");
        while self.runs.last().is_some_and(|r| r.0 >= index_from) {
            self.runs.pop();
        }
    }

    /// Moves the base to a newer snapshot; `log_ends_below` says the whole
    /// log is replaced by it.
    pub(crate) fn rebase(&mut self, snapshot: SnapshotMeta, log_ends_below: bool) {
        assert!(snapshot.index >= self.base.index, "snapshots only move forward");
        if log_ends_below {
            self.runs.clear();
        } else {
            // Keep the run holding the first index above the snapshot.
            let keep_from = self.runs.partition_point(|r| r.0 <= snapshot.index + 1).saturating_sub(1);
            self.runs.drain(..keep_from);
            if let Some(first) = self.runs.first_mut() {
                first.0 = first.0.max(snapshot.index + 1);
            }
        }
        self.base = snapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta { index, term }
    }

    #[test]
    fn terms_follow_appends_truncations_and_snapshots() {
        let mut terms = TermRuns::new(meta(0, 0));
        for (index, term) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 5)] {
            terms.append(index, term);
        }
        let at = |t: &TermRuns| (0..=6).map(|i| t.term_at(i)).collect::<Vec<_>>();
        assert_eq!(at(&terms), vec![Some(0), Some(1), Some(1), Some(2), Some(2), Some(5), Some(5)]);
        terms.truncate(4);
        assert_eq!(terms.term_last(), 2, "index 3 still has term 2");
        terms.truncate(2);
        assert_eq!(terms.term_last(), 1);
        terms.append(2, 3);
        terms.append(3, 3);
        terms.rebase(meta(2, 3), false);
        assert_eq!((terms.term_at(1), terms.term_at(2), terms.term_at(3)), (None, Some(3), Some(3)));
        terms.rebase(meta(10, 4), true);
        assert_eq!(terms.term_last(), 4);
    }

    #[test]
    fn an_append_at_the_snapshot_term_needs_no_run() {
        let mut terms = TermRuns::new(meta(7, 2));
        terms.append(8, 2);
        assert_eq!(terms.runs, vec![]);
        terms.append(9, 3);
        assert_eq!((terms.term_at(8), terms.term_at(9)), (Some(2), Some(3)));
    }
}
