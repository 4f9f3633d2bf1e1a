//! Every retained version of one key.
//!
//! In: puts and deletes of the key at increasing revisions, reads at a
//! revision, and compactions. Out: the key's state at any retained revision,
//! the exact version a history event refers to, and the quota bytes each
//! change charges or frees.
//!
//! A version is a put (with etcd's create_revision, version and lease) or a
//! tombstone. Versions since the last tombstone form a "generation": version
//! counts from 1 and create_revision is the generation's first put.

use crate::config::ENTRY_OVERHEAD_BYTES;
use crate::key_value::KeyValue;
use crate::lease_id::LeaseId;
use crate::revision::Revision;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Live {
    pub create_revision: u64,
    pub version: u64,
    #[serde(with = "haven_runtime::byte_vec")]
    pub value: Vec<u8>,
    pub lease: LeaseId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyVersion {
    pub rev: Revision,
    /// `None` is a tombstone.
    pub live: Option<Live>,
}

/// Why a decoded history is not one the store could have built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadHistory(pub &'static str);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyHistory {
    /// Ascending by revision; never empty once stored in the keyspace.
    versions: Vec<KeyVersion>,
}

/// Quota bytes of one stored version.
pub(crate) fn version_bytes(key_len: usize, value_len: usize) -> u64 {
    key_len as u64 + value_len as u64 + ENTRY_OVERHEAD_BYTES
}

pub(crate) fn to_key_value(key: &[u8], rev: Revision, live: &Live) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        create_revision: live.create_revision,
        mod_revision: rev.main,
        version: live.version,
        value: live.value.clone(),
        lease: live.lease,
    }
}

impl KeyHistory {
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The key's current state, if it exists.
    pub fn latest(&self) -> Option<(Revision, &Live)> {
        let last = self.versions.last()?;
        last.live.as_ref().map(|live| (last.rev, live))
    }

    /// The key's state at main revision `main`, if it existed then.
    pub fn at(&self, main: u64) -> Option<(Revision, &Live)> {
        let idx = self.versions.partition_point(|v| v.rev.main <= main);
        let v = self.versions.get(idx.checked_sub(1)?)?;
        v.live.as_ref().map(|live| (v.rev, live))
    }

    /// The put at exactly `rev`, if one is retained.
    pub fn put_at(&self, rev: Revision) -> Option<&Live> {
        let idx = self.versions.binary_search_by_key(&rev, |v| v.rev).ok()?;
        self.versions[idx].live.as_ref()
    }

    /// Records a put; returns the quota bytes it charges.
    pub fn put(&mut self, key_len: usize, rev: Revision, value: Vec<u8>, lease: LeaseId) -> u64 {
        self.assert_after_last(rev);
        let (create_revision, version) = match self.latest() {
            Some((_, live)) => (live.create_revision, live.version + 1),
            None => (rev.main, 1),
        };
        let bytes = version_bytes(key_len, value.len());
        self.versions.push(KeyVersion { rev, live: Some(Live { create_revision, version, value, lease }) });
        bytes
    }

    /// Records a delete of a live key; returns the quota bytes it charges.
    pub fn delete(&mut self, key_len: usize, rev: Revision) -> u64 {
        self.assert_after_last(rev);
        assert!(self.latest().is_some(), "only a live key can be deleted: a tombstone on a tombstone breaks versions");
        self.versions.push(KeyVersion { rev, live: None });
        version_bytes(key_len, 0)
    }

    fn assert_after_last(&self, rev: Revision) {
        if let Some(last) = self.versions.last() {
            assert!(rev > last.rev, "history must grow in revision order: {rev:?} after {:?}", last.rev);
        }
    }

    /// Drops what no read at `at` or later can see: versions below the last
    /// one at or before `at`, and that one too if it is a tombstone (as
    /// etcd's keyIndex.compact). Returns the quota bytes freed.
    pub fn compact(&mut self, key_len: usize, at: u64) -> u64 {
        let keep_from = self.compacted_below(at);
        self.versions.drain(..keep_from).map(|v| Self::bytes_of(key_len, &v)).sum()
    }

    /// How many versions (from the oldest) a compaction at `at` drops.
    pub fn compacted_below(&self, at: u64) -> usize {
        let idx = self.versions.partition_point(|v| v.rev.main <= at);
        match idx.checked_sub(1).map(|i| &self.versions[i]) {
            None => 0,
            Some(v) if v.live.is_none() => idx,
            Some(_) => idx - 1,
        }
    }

    fn bytes_of(key_len: usize, v: &KeyVersion) -> u64 {
        version_bytes(key_len, v.live.as_ref().map_or(0, |l| l.value.len()))
    }

    /// Quota bytes of every retained version.
    pub fn bytes(&self, key_len: usize) -> u64 {
        self.versions.iter().map(|v| Self::bytes_of(key_len, v)).sum()
    }

    pub fn revisions(&self) -> impl Iterator<Item = (Revision, bool)> + '_ {
        self.versions.iter().map(|v| (v.rev, v.live.is_some()))
    }

    /// Checks what `put`, `delete` and `compact` guarantee, for histories
    /// read from a snapshot.
    pub fn validate(&self) -> Result<(), BadHistory> {
        let first = self.versions.first().ok_or(BadHistory("a stored key has no versions"))?;
        let live = first.live.as_ref().ok_or(BadHistory("a history starts with a tombstone"))?;
        if live.version == 0 || live.create_revision > first.rev.main || live.create_revision == 0 {
            return Err(BadHistory("first version has an impossible version or create_revision"));
        }
        for pair in self.versions.windows(2) {
            Self::validate_step(&pair[0], &pair[1])?;
        }
        Ok(())
    }

    fn validate_step(prev: &KeyVersion, next: &KeyVersion) -> Result<(), BadHistory> {
        // Two changes may share a main revision: etcd's duplicate-key check
        // lets a delete with range_end "\0" and a put of a key it covers into
        // one txn.
        if next.rev <= prev.rev {
            return Err(BadHistory("versions are not in strictly increasing revision order"));
        }
        match (&prev.live, &next.live) {
            (None, None) => Err(BadHistory("two tombstones in a row")),
            (Some(_), None) => Ok(()),
            (Some(p), Some(n)) if n.version == p.version + 1 && n.create_revision == p.create_revision => Ok(()),
            (None, Some(n)) if n.version == 1 && n.create_revision == next.rev.main => Ok(()),
            _ => Err(BadHistory("version or create_revision does not follow the previous version")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: u64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn version_resets_after_delete_and_create_revision_follows() {
        let mut h = KeyHistory::default();
        h.put(1, rev(2), b"a".to_vec(), 0);
        h.put(1, rev(3), b"b".to_vec(), 0);
        h.delete(1, rev(4));
        h.put(1, rev(5), b"c".to_vec(), 0);
        let (r, live) = h.latest().unwrap();
        assert_eq!((r.main, live.create_revision, live.version), (5, 5, 1));
        assert_eq!(h.at(3).map(|(_, l)| (l.create_revision, l.version)), Some((2, 2)));
        assert!(h.at(4).is_none(), "deleted at 4");
        assert!(h.at(1).is_none(), "not yet created at 1");
        assert_eq!(h.validate(), Ok(()));
    }

    #[test]
    fn compaction_keeps_the_version_visible_at_the_compaction_point() {
        let mut h = KeyHistory::default();
        h.put(1, rev(2), b"a".to_vec(), 0);
        h.put(1, rev(3), b"b".to_vec(), 0);
        h.put(1, rev(6), b"c".to_vec(), 0);
        let freed = h.compact(1, 5);
        assert_eq!(freed, version_bytes(1, 1));
        assert_eq!(h.at(5).map(|(_, l)| l.value.clone()), Some(b"b".to_vec()));
        assert_eq!(h.revisions().count(), 2);
        assert_eq!(h.validate(), Ok(()), "a compacted history is still valid");
    }

    #[test]
    fn compaction_drops_a_trailing_tombstone_and_everything_before_it() {
        let mut h = KeyHistory::default();
        h.put(1, rev(2), b"a".to_vec(), 0);
        h.delete(1, rev(3));
        h.compact(1, 3);
        assert!(h.is_empty());
    }

    #[test]
    fn validate_rejects_histories_the_store_cannot_build() {
        let mut h = KeyHistory::default();
        h.put(1, rev(2), b"a".to_vec(), 0);
        h.put(1, rev(3), b"a".to_vec(), 0);
        h.versions[1].live.as_mut().unwrap().version = 7;
        assert!(h.validate().is_err());
        h.versions[1].live = None;
        h.versions.push(KeyVersion { rev: rev(4), live: None });
        assert!(h.validate().is_err());
        assert!(KeyHistory::default().validate().is_err());
    }
}
