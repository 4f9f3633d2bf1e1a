//! The leases as the replicated state knows them.
//!
//! In: grants, revokes, and the attach/detach of keys as puts and deletes
//! apply. Out: which leases exist, their granted TTLs (seconds, or
//! milliseconds for Haven's own grants) and attached keys.
//! Deadlines are not here: time belongs to the leader's [`crate::Lessor`].

use crate::error::StoreError;
use crate::key_range::KeyRange;
use crate::keyspace::Keyspace;
use crate::lease_id::{LeaseId, NO_LEASE};
use crate::lessor::whole_seconds;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseEntry {
    /// Granted TTL in seconds.
    pub ttl: i64,
    pub keys: BTreeSet<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseTable {
    leases: BTreeMap<LeaseId, LeaseEntry>,
    /// Where the search for a store-chosen id starts.
    next_id: LeaseId,
    /// The exact TTL of leases granted in milliseconds (their entry's
    /// `ttl` holds it rounded up to seconds, as etcd's API reports it).
    /// A snapshot carries it in a section of its own after the table, and
    /// only when it is not empty: a store without such leases snapshots
    /// to the same bytes as before they existed.
    #[serde(skip)]
    ttl_ms: BTreeMap<LeaseId, u64>,
}

impl Default for LeaseTable {
    fn default() -> LeaseTable {
        LeaseTable { leases: BTreeMap::new(), next_id: 1, ttl_ms: BTreeMap::new() }
    }
}

impl LeaseTable {
    pub fn get(&self, id: LeaseId) -> Option<&LeaseEntry> {
        self.leases.get(&id)
    }

    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn ids(&self) -> impl Iterator<Item = LeaseId> + '_ {
        self.leases.keys().copied()
    }

    /// The granted TTL of lease `id`: its milliseconds, or its seconds.
    pub fn ttl(&self, id: LeaseId) -> Option<Duration> {
        let entry = self.leases.get(&id)?;
        Some(match self.ttl_ms.get(&id) {
            Some(&ms) => Duration::from_millis(ms),
            None => Duration::from_secs(u64::try_from(entry.ttl).unwrap_or(0)),
        })
    }

    /// Adds a lease of `ttl_ms` milliseconds, as [`LeaseTable::grant`].
    pub fn grant_ms(&mut self, id: LeaseId, ttl_ms: u64) -> Result<LeaseId, StoreError> {
        assert!(ttl_ms > 0, "the store raises a TTL to its minimum first");
        let id = self.grant(id, whole_seconds(Duration::from_millis(ttl_ms)))?;
        self.ttl_ms.insert(id, ttl_ms);
        Ok(id)
    }

    /// The snapshot section of leases granted in milliseconds.
    pub fn ttl_ms_section(&self) -> &BTreeMap<LeaseId, u64> {
        &self.ttl_ms
    }

    /// Restores the section [`LeaseTable::ttl_ms_section`] gave, checking
    /// that each names a lease of the table, with its seconds rounded up.
    pub fn restore_ttl_ms(&mut self, section: BTreeMap<LeaseId, u64>) -> Result<(), &'static str> {
        for (&id, &ms) in &section {
            let seconds = self.leases.get(&id).ok_or("a millisecond TTL names no lease")?.ttl;
            if ms == 0 || seconds != whole_seconds(Duration::from_millis(ms)) {
                return Err("a lease's millisecond TTL disagrees with its TTL in seconds");
            }
        }
        self.ttl_ms = section;
        Ok(())
    }

    /// Adds a lease with `id`, or with a fresh positive id when `id` is 0.
    pub fn grant(&mut self, id: LeaseId, ttl: i64) -> Result<LeaseId, StoreError> {
        let id = if id == NO_LEASE { self.fresh_id() } else { id };
        if self.leases.contains_key(&id) {
            return Err(StoreError::LeaseExists);
        }
        self.leases.insert(id, LeaseEntry { ttl, keys: BTreeSet::new() });
        Ok(id)
    }

    /// The first unused id from `next_id` on, wrapping within the positive
    /// ids (etcd's generated ids are positive int63). Every replica applies
    /// the same grants, so every replica picks the same id.
    fn fresh_id(&mut self) -> LeaseId {
        // At most len() ids are taken, so len() + 1 probes find a free one.
        for _ in 0..=self.leases.len() {
            let id = self.next_id;
            self.next_id = if id == LeaseId::MAX { 1 } else { id + 1 };
            if !self.leases.contains_key(&id) {
                return id;
            }
        }
        unreachable!("more than {} leases among {} probes", self.leases.len(), self.leases.len() + 1)
    }

    pub fn remove(&mut self, id: LeaseId) -> Option<LeaseEntry> {
        self.ttl_ms.remove(&id);
        self.leases.remove(&id)
    }

    pub fn attach(&mut self, id: LeaseId, key: &[u8]) {
        if id != NO_LEASE {
            let lease = self.leases.get_mut(&id).expect("puts are checked to name an existing lease");
            lease.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&mut self, id: LeaseId, key: &[u8]) {
        if id != NO_LEASE {
            let lease = self.leases.get_mut(&id).expect("a live key's lease exists: revoke deletes its keys");
            assert!(lease.keys.remove(key), "a live key is in its lease's key set");
        }
    }
}

impl LeaseTable {
    /// Checks, for a table read from a snapshot, that leases and keys point
    /// at each other exactly as attach and detach keep them.
    pub fn validate_against(&self, kv: &Keyspace) -> Result<(), &'static str> {
        if self.next_id <= 0 {
            return Err("the next lease id is not positive");
        }
        for (&id, lease) in &self.leases {
            if id == NO_LEASE || lease.ttl <= 0 {
                return Err("a lease has id 0 or a TTL below one second");
            }
            if lease.keys.iter().any(|k| kv.latest(k).is_none_or(|(_, live)| live.lease != id)) {
                return Err("a lease lists a key that is gone or on another lease");
            }
        }
        let every_key = KeyRange::new(&[0], &[0]);
        for (key, _, live) in kv.live_at(&every_key, kv.revision()) {
            let listed = self.leases.get(&live.lease).is_some_and(|l| l.keys.contains(key));
            if live.lease != NO_LEASE && !listed {
                return Err("a key is on a lease that does not list it");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_chosen_ids_skip_taken_ones_and_are_positive() {
        let mut t = LeaseTable::default();
        assert_eq!(t.grant(2, 10), Ok(2));
        assert_eq!(t.grant(0, 10), Ok(1));
        assert_eq!(t.grant(0, 10), Ok(3), "2 is taken by the client-chosen grant");
        assert_eq!(t.grant(3, 10), Err(StoreError::LeaseExists));
        t.next_id = LeaseId::MAX;
        assert_eq!(t.grant(0, 10), Ok(LeaseId::MAX));
        assert_eq!(t.grant(0, 10), Ok(4), "wraps to the positive ids and skips 1..=3");
    }
}
