//! A node's disk in the cluster harness: what survives a crash.
//!
//! In: the core's persist requests (whole, or torn by a crash), snapshots
//! the node saves or installs. Out: the [`DurableState`] a restart reads,
//! and whether a committed entry survives here.
//!
//! Like the WAL, a write first drops every entry from its first index on;
//! entries a snapshot already covers are skipped, since a persist issued
//! before a compaction may complete after it.

use haven_raft::{DurableState, Entry, HardState, PersistRequest, SnapshotMeta};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Default, Clone)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub snapshot_data: Vec<u8>,
    /// Contiguous from `snapshot.last.index + 1`.
    entries: Vec<Entry>,
}

impl Disk {
    pub fn write(&mut self, persist: &PersistRequest) {
        if let Some(hard_state) = persist.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(first) = persist.entries.first() {
            self.write_entries(first.index, &persist.entries);
        }
    }

    /// A crash in the middle of `persist`: maybe the hard state, and some
    /// prefix of the entries (after the truncation), reached the platter.
    pub fn write_torn(&mut self, persist: &PersistRequest, rng: &mut ChaCha8Rng) {
        if rng.random_bool(0.5)
            && let Some(hard_state) = persist.hard_state
        {
            self.hard_state = hard_state;
        }
        if let Some(first) = persist.entries.first()
            && rng.random_bool(0.5)
        {
            let kept = rng.random_range(0..=persist.entries.len());
            self.write_entries(first.index, &persist.entries[..kept]);
        }
    }

    /// Drops entries from `first_index` on, then appends `entries`.
    fn write_entries(&mut self, first_index: u64, entries: &[Entry]) {
        let base = self.snapshot.last.index;
        self.entries.truncate(first_index.saturating_sub(base + 1) as usize);
        for entry in entries.iter().filter(|e| e.index > base) {
            assert_eq!(entry.index, base + 1 + self.entries.len() as u64, "the core persists contiguous entries");
            self.entries.push(entry.clone());
        }
    }

    /// Saves a snapshot; the log keeps only entries after it, and none at
    /// all unless `keep_after` (an installed snapshot that conflicts).
    pub fn save_snapshot(&mut self, meta: SnapshotMeta, data: Vec<u8>, keep_after: bool) {
        let index = meta.last.index;
        self.entries.retain(|e| keep_after && e.index > index);
        self.snapshot = meta;
        self.snapshot_data = data;
    }

    /// A committed entry survives here if the log holds it or a snapshot covers it.
    pub fn holds(&self, entry: &Entry) -> bool {
        entry.index <= self.snapshot.last.index || self.entries.iter().any(|e| e == entry)
    }

    pub fn durable(&self) -> DurableState {
        DurableState { hard_state: self.hard_state, snapshot: self.snapshot.clone(), entries: self.entries.clone() }
    }
}
