//! The replicated state machine: etcd v3's key-value store.
//!
//! In: requests in log order ([`Store::apply`]); read-only questions
//! between applies (ranges at a ReadIndex, history for watches, leases for
//! the leader's lessor). Out: etcd's response or error for each request;
//! watch events in revision order; snapshots.
//!
//! Every apply is deterministic (no clock, no randomness, ordered maps), so
//! replicas that apply the same log hold the same state and answer the same.
//! A request that fails changes nothing; one that succeeds is one write
//! transaction, raising the revision by one if it changed any key.

use crate::applier::Applier;
use crate::check;
use crate::config::{LEASE_OVERHEAD_BYTES, LEASE_TTL_SECONDS_MAX, StoreConfig};
use crate::error::{Compacted, StoreError};
use crate::event::Event;
use crate::key_range::KeyRange;
use crate::keyspace::{EventScan, Keyspace, ScanLimits};
use crate::lease_id::{LeaseId, NO_LEASE};
use crate::lease_table::LeaseTable;
use crate::range_read;
use crate::request::{
    LeaseGrantMsRequest, LeaseGrantRequest, LeaseTimeToLiveRequest, PutRequest, RangeRequest, Request, TxnRequest,
};
use crate::response::{
    CompactionResponse, LeaseGrantMsResponse, LeaseGrantResponse, LeaseLeasesResponse, LeaseRevokeResponse,
    LeaseTimeToLiveResponse, RangeResponse, Response, ResponseHeader, TxnResponse,
};
use crate::revision::Revision;
use crate::txn_path;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) kv: Keyspace,
    pub(crate) leases: LeaseTable,
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        assert!(config.lease_ttl_seconds_min >= 1, "a lease shorter than a second expires before any keep-alive");
        assert!(config.txn_ops_len_max >= 1 && config.range_kvs_len_max >= 1, "zero limits refuse everything");
        Store { config, kv: Keyspace::default(), leases: LeaseTable::default() }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The current revision (1 for an empty store).
    pub fn revision(&self) -> u64 {
        self.kv.revision()
    }

    /// The last compaction point, if any.
    pub fn compact_revision(&self) -> Option<u64> {
        self.kv.compact_revision()
    }

    /// Moves the revision up by `bump` for a restored cluster, marking
    /// everything below compacted (`Keyspace::bump_revision`); the new
    /// revision, or `None` (nothing changed) if it would overflow.
    pub fn bump_revision(&mut self, bump: u64) -> Option<u64> {
        self.kv.bump_revision(bump)
    }

    /// Leases granted and not yet revoked or expired.
    pub fn leases_len(&self) -> usize {
        self.leases.len()
    }

    /// Quota bytes in use: every retained key version and every lease.
    pub fn bytes_used(&self) -> u64 {
        self.kv.bytes_used() + self.leases.len() as u64 * LEASE_OVERHEAD_BYTES
    }

    fn header(&self) -> ResponseHeader {
        ResponseHeader { revision: self.kv.revision() }
    }

    /// Applies one committed command. On error the store is unchanged.
    pub fn apply(&mut self, req: &Request) -> Result<Response, StoreError> {
        check::check_request(req, &self.config)?;
        self.check_quota(req)?;
        match req {
            Request::Range(r) => self.range(r).map(Response::Range),
            Request::Put(p) => self.put(p),
            Request::DeleteRange(d) => Ok(Response::DeleteRange(self.write(|a| a.delete_range(d)))),
            Request::Txn(t) => self.txn(t).map(Response::Txn),
            Request::Compact(c) => {
                self.kv.compact(c.revision)?;
                Ok(Response::Compact(CompactionResponse { header: self.header() }))
            }
            Request::LeaseGrant(g) => self.lease_grant(g).map(Response::LeaseGrant),
            Request::LeaseRevoke(r) => self.lease_revoke(r.id).map(Response::LeaseRevoke),
            Request::LeaseTimeToLive(r) => Ok(Response::LeaseTimeToLive(self.lease_time_to_live(r))),
            Request::LeaseLeases => Ok(Response::LeaseLeases(self.lease_leases())),
            Request::LeaseGrantMs(g) => self.lease_grant_ms(g).map(Response::LeaseGrantMs),
        }
    }

    /// etcd refuses requests that would add data once the quota is reached.
    fn check_quota(&self, req: &Request) -> Result<(), StoreError> {
        let cost = check::quota_cost(req);
        if cost > 0 && self.bytes_used().saturating_add(cost) >= self.config.quota_bytes_max {
            return Err(StoreError::NoSpace);
        }
        Ok(())
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut Applier) -> R) -> R {
        self.kv.begin();
        let out = f(&mut Applier { kv: &mut self.kv, leases: &mut self.leases, config: &self.config });
        self.kv.end();
        out
    }

    /// A range read between applies (a linearizable read after ReadIndex,
    /// or a serializable one).
    pub fn range(&self, r: &RangeRequest) -> Result<RangeResponse, StoreError> {
        check::check_range_request(r, &self.config)?;
        let main = self.kv.read_revision(r.revision)?;
        Ok(range_read::read(&self.kv, r, main, &self.config))
    }

    fn put(&mut self, p: &PutRequest) -> Result<Response, StoreError> {
        // Outside a txn etcd looks the lease up before the key.
        if p.lease != NO_LEASE && self.leases.get(p.lease).is_none() {
            return Err(StoreError::LeaseNotFound);
        }
        txn_path::check_put(&self.kv, &self.leases, p)?;
        Ok(Response::Put(self.write(|a| a.put(p))))
    }

    fn txn(&mut self, t: &TxnRequest) -> Result<TxnResponse, StoreError> {
        let mut path = Vec::new();
        txn_path::compute(&self.kv, t, &mut path);
        txn_path::check(&self.kv, &self.leases, t, &path)?;
        let resp = self.write(|a| a.txn(t, &mut path.iter(), false));
        Ok(resp)
    }

    fn lease_grant(&mut self, g: &LeaseGrantRequest) -> Result<LeaseGrantResponse, StoreError> {
        if g.ttl > LEASE_TTL_SECONDS_MAX {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        let ttl = g.ttl.max(self.config.lease_ttl_seconds_min);
        let id = self.leases.grant(g.id, ttl)?;
        Ok(LeaseGrantResponse { header: self.header(), id, ttl })
    }

    fn lease_grant_ms(&mut self, g: &LeaseGrantMsRequest) -> Result<LeaseGrantMsResponse, StoreError> {
        if g.ttl_ms / 1_000 > LEASE_TTL_SECONDS_MAX as u64 {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        let ttl_ms = g.ttl_ms.max(self.config.lease_ttl_ms_min).max(1);
        let id = self.leases.grant_ms(g.id, ttl_ms)?;
        Ok(LeaseGrantMsResponse { header: self.header(), id, ttl_ms })
    }

    fn lease_revoke(&mut self, id: LeaseId) -> Result<LeaseRevokeResponse, StoreError> {
        if self.leases.get(id).is_none() {
            return Err(StoreError::LeaseNotFound);
        }
        self.write(|a| a.revoke(id));
        Ok(LeaseRevokeResponse { header: self.header() })
    }

    /// The granted TTL and keys of a lease; `ttl` is -1 for a missing lease
    /// and the granted TTL otherwise (the leader's lessor knows what remains).
    pub fn lease_time_to_live(&self, r: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
        let header = self.header();
        match self.leases.get(r.id) {
            None => LeaseTimeToLiveResponse { header, id: r.id, ttl: -1, granted_ttl: 0, keys: Vec::new() },
            Some(lease) => {
                let keys = if r.keys { lease.keys.iter().cloned().collect() } else { Vec::new() };
                LeaseTimeToLiveResponse { header, id: r.id, ttl: lease.ttl, granted_ttl: lease.ttl, keys }
            }
        }
    }

    pub fn lease_leases(&self) -> LeaseLeasesResponse {
        LeaseLeasesResponse { header: self.header(), leases: self.leases.ids().collect() }
    }

    /// Every lease with its granted TTL, for a lessor taking over.
    pub fn lease_ttls(&self) -> impl Iterator<Item = (LeaseId, Duration)> + '_ {
        self.leases.ids().map(|id| (id, self.leases.ttl(id).expect("listed by the table")))
    }

    /// Events of revisions `start_revision` and later on keys in `range`,
    /// in revision order. Stops between two revisions once `limit` events
    /// are gathered, never inside one, so the caller resumes from the
    /// revision after the last event's; a first revision with more than
    /// `limit` events comes whole. A watcher needing a hard bound uses
    /// [`Store::scan_events`] (what [`crate::WatchHub`] does).
    pub fn events_since(&self, start_revision: u64, range: &KeyRange, limit: usize) -> Result<Vec<Event>, Compacted> {
        let limits = ScanLimits { events_len_max: limit, scanned_len_max: usize::MAX, whole_revisions: true };
        self.kv.scan(Revision::start_of(start_revision), range, limits).map(|scan| scan.events)
    }

    /// Events from change `from` on, within `limits`, and where to resume.
    pub fn scan_events(&self, from: Revision, range: &KeyRange, limits: ScanLimits) -> Result<EventScan, Compacted> {
        self.kv.scan(from, range, limits)
    }
}
