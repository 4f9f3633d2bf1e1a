//! The in-memory copy of the Raft log after the last snapshot.
//!
//! In: entries appended by the leader or accepted from one, suffix
//! truncations on conflict, compaction up to a snapshot taken here, and a
//! snapshot installed from the leader. Out: terms at indexes, batches for
//! AppendEntries, and the term-boundary lookups fast backtracking needs.
//!
//! Every entry here is either durable already (restored) or part of a
//! persist request the core has issued or will issue; this type does not
//! know which, the durability gate does.

use crate::entry::{Entry, LogPosition};
use crate::membership::Membership;
use crate::membership_log::MembershipLog;

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// The position the snapshot covers: entries up to it are compacted.
    snapshot: LogPosition,
    /// `entries[i].index == snapshot.index + 1 + i`; terms never decrease.
    entries: Vec<Entry>,
    /// Follows every change above.
    memberships: MembershipLog,
}

impl RaftLog {
    /// `entries` must already be validated as contiguous after `snapshot`;
    /// `base` is the configuration in force at the snapshot.
    pub(crate) fn new(snapshot: LogPosition, entries: Vec<Entry>, base: Membership) -> RaftLog {
        let memberships = MembershipLog::new(base, &entries);
        let log = RaftLog { snapshot, entries, memberships };
        for (offset, entry) in log.entries.iter().enumerate() {
            assert_eq!(entry.index, snapshot.index + 1 + offset as u64, "restored log has a gap");
        }
        log
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.snapshot.index + 1
    }

    pub(crate) fn last(&self) -> LogPosition {
        self.entries.last().map_or(self.snapshot, Entry::position)
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.last().index
    }

    /// The configuration in force: the latest one in the log.
    pub(crate) fn membership(&self) -> &Membership {
        self.memberships.current()
    }

    /// The index of the entry that set [`RaftLog::membership`] (0: none in the log).
    pub(crate) fn membership_index(&self) -> u64 {
        self.memberships.current_index()
    }

    /// The configuration in force at `index` (from the snapshot on).
    pub(crate) fn membership_at(&self, index: u64) -> &Membership {
        self.memberships.at(index)
    }

    fn offset(&self, index: u64) -> Option<usize> {
        let offset = index.checked_sub(self.first_index())?;
        usize::try_from(offset).ok().filter(|&o| o < self.entries.len())
    }

    pub(crate) fn entry(&self, index: u64) -> Option<&Entry> {
        self.offset(index).map(|o| &self.entries[o])
    }

    /// The term at `index`, known for the snapshot's last entry and after;
    /// `None` below the snapshot (compacted) or beyond the end.
    pub(crate) fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        let last = self.last();
        assert_eq!(entry.index, last.index + 1, "log appends must be contiguous");
        assert!(entry.term >= last.term, "terms in a log never decrease (entry {entry:?} after {last:?})");
        self.memberships.on_append(&entry);
        self.entries.push(entry);
    }

    /// Drops `index` and everything after it.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        let offset = self.offset(index).expect("truncation point must be an entry after the snapshot");
        self.entries.truncate(offset);
        self.memberships.on_truncate(index);
    }

    /// The position entries up to which are compacted away.
    pub(crate) fn snapshot(&self) -> LogPosition {
        self.snapshot
    }

    /// Discards entries up to `index`, which a snapshot taken here covers.
    pub(crate) fn compact_to(&mut self, index: u64) {
        let term = self.term_at(index).expect("compaction point must be in the log");
        let drop = usize::try_from(index - self.snapshot.index).expect("in the log, so it fits");
        self.entries.drain(..drop);
        self.snapshot = LogPosition::new(index, term);
        self.memberships.on_compact(index);
    }

    /// A snapshot from the leader replaces the log up to `last`. Entries
    /// after it are kept if ours holds `last` itself (log matching then
    /// says they agree with the leader's up to there); otherwise the whole
    /// log goes. Returns whether entries were kept.
    pub(crate) fn install_snapshot(&mut self, last: LogPosition, membership: Membership) -> bool {
        let kept = last.index > self.snapshot.index && self.term_at(last.index) == Some(last.term);
        if kept {
            let drop = usize::try_from(last.index - self.snapshot.index).expect("in the log, so it fits");
            self.entries.drain(..drop);
        } else {
            self.entries.clear();
        }
        self.snapshot = last;
        self.memberships.on_install(last.index, membership, kept);
        kept
    }

    /// Entries `lo..=hi`, which must all be present.
    pub(crate) fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        if lo > hi {
            return &[];
        }
        let (Some(a), Some(b)) = (self.offset(lo), self.offset(hi)) else {
            panic!("slice {lo}..={hi} outside the log {:?}..={:?}", self.first_index(), self.last());
        };
        &self.entries[a..=b]
    }

    /// A batch starting at `from` for one AppendEntries: at most `count_max`
    /// entries and `bytes_max` bytes, but never empty if `from` exists, so
    /// one oversized entry cannot stall replication.
    pub(crate) fn batch(&self, from: u64, count_max: usize, bytes_max: usize) -> Vec<Entry> {
        let Some(start) = self.offset(from) else { return Vec::new() };
        let mut bytes = 0;
        let mut batch = Vec::new();
        for entry in self.entries[start..].iter().take(count_max) {
            bytes += entry.size_bytes();
            if !batch.is_empty() && bytes > bytes_max {
                break;
            }
            batch.push(entry.clone());
        }
        batch
    }

    /// The first index holding `term` in this log (the snapshot's last index
    /// if the term reaches back into it), for a follower's conflict hint.
    pub(crate) fn first_index_of_term(&self, term: u64) -> u64 {
        let offset = self.entries.partition_point(|e| e.term < term);
        if offset == 0 && self.snapshot.term == term {
            return self.snapshot.index;
        }
        self.first_index() + offset as u64
    }

    /// The last index at or below `upto` holding `term`, for the leader's
    /// backtracking; `None` if this log has no entry of that term there.
    pub(crate) fn last_index_of_term(&self, term: u64, upto: u64) -> Option<u64> {
        let end = upto.min(self.last_index());
        if end < self.first_index() {
            return (self.snapshot.term == term && end == self.snapshot.index).then_some(end);
        }
        let within = &self.entries[..=self.offset(end).expect("end is inside the log")];
        let count = within.partition_point(|e| e.term <= term);
        match count.checked_sub(1).map(|o| &within[o]) {
            Some(entry) if entry.term == term => Some(entry.index),
            Some(_) => None,
            None => (self.snapshot.term == term).then_some(self.snapshot.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ENTRY_OVERHEAD_BYTES;

    /// A log after snapshot 2@t1 holding terms [1, 2, 2, 4] at indexes 3..=6.
    fn log() -> RaftLog {
        let terms = [1, 2, 2, 4];
        let entries = terms.iter().enumerate().map(|(i, &t)| Entry::noop(3 + i as u64, t)).collect();
        RaftLog::new(LogPosition::new(2, 1), entries, Membership::new(vec![haven_runtime::NodeId(1)], vec![]))
    }

    #[test]
    fn terms_are_known_from_the_snapshot_on() {
        let log = log();
        assert_eq!((log.term_at(1), log.term_at(2), log.term_at(5), log.term_at(7)), (None, Some(1), Some(2), None));
        assert_eq!(log.last(), LogPosition::new(6, 4));
    }

    #[test]
    fn term_boundaries_for_backtracking() {
        let log = log();
        assert_eq!(log.first_index_of_term(2), 4);
        assert_eq!(log.first_index_of_term(1), 2, "term 1 reaches into the snapshot");
        assert_eq!(log.last_index_of_term(2, 10), Some(5));
        assert_eq!(log.last_index_of_term(2, 4), Some(4));
        assert_eq!(log.last_index_of_term(3, 10), None, "term 3 is absent");
        assert_eq!(log.last_index_of_term(1, 3), Some(3));
        assert_eq!(log.last_index_of_term(1, 2), Some(2), "the snapshot's own term");
    }

    #[test]
    fn batches_respect_count_and_bytes_but_never_come_back_empty() {
        let log = log();
        assert_eq!(log.batch(3, 2, usize::MAX).len(), 2);
        assert_eq!(log.batch(3, 10, 1).len(), 1, "one entry even if it alone exceeds the byte limit");
        assert_eq!(log.batch(3, 10, 2 * (ENTRY_OVERHEAD_BYTES + 1)).len(), 2);
        assert!(log.batch(7, 10, 100).is_empty());
    }

    #[test]
    fn compaction_keeps_terms_from_the_new_snapshot_on() {
        let mut log = log();
        log.compact_to(4);
        assert_eq!(
            (log.first_index(), log.term_at(4), log.term_at(3), log.last()),
            (5, Some(2), None, LogPosition::new(6, 4))
        );
        log.compact_to(6);
        assert_eq!((log.first_index(), log.last()), (7, LogPosition::new(6, 4)));
    }

    #[test]
    fn an_installed_snapshot_keeps_the_suffix_only_if_it_matches() {
        let mut log = log();
        let base = || Membership::new(vec![haven_runtime::NodeId(1)], vec![]);
        assert!(log.install_snapshot(LogPosition::new(5, 2), base()));
        assert_eq!((log.first_index(), log.last()), (6, LogPosition::new(6, 4)));
        let mut log = self::log();
        assert!(!log.install_snapshot(LogPosition::new(5, 3), base()), "term 3 at 5 conflicts with our term 2");
        assert_eq!((log.first_index(), log.last()), (6, LogPosition::new(5, 3)));
        let mut log = self::log();
        assert!(!log.install_snapshot(LogPosition::new(9, 4), base()), "beyond our log");
        assert_eq!(log.last(), LogPosition::new(9, 4));
    }

    #[test]
    fn truncation_drops_the_suffix() {
        let mut log = log();
        log.truncate_from(5);
        assert_eq!(log.last(), LogPosition::new(4, 2));
        log.append(Entry::noop(5, 3));
        assert_eq!(log.term_at(5), Some(3));
    }
}
