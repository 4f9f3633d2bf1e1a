//! Carries out one checked write transaction.
//!
//! In: a request that passed every check (API checks, quota, leases and
//! keys the chosen path needs, read revisions), the txn path its compares
//! chose, and the keyspace with a write transaction open. Out: the response
//! of each op, with the keyspace and lease table changed. Nothing here can
//! fail: a txn either is refused before it writes or runs whole.

use crate::config::StoreConfig;
use crate::key_history;
use crate::key_range::KeyRange;
use crate::keyspace::Keyspace;
use crate::lease_id::{LeaseId, NO_LEASE};
use crate::lease_table::LeaseTable;
use crate::range_read;
use crate::request::{DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::response::{DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader, ResponseOp, TxnResponse};

#[derive(Debug)]
pub(crate) struct Applier<'a> {
    pub kv: &'a mut Keyspace,
    pub leases: &'a mut LeaseTable,
    pub config: &'a StoreConfig,
}

impl Applier<'_> {
    fn header(&self) -> ResponseHeader {
        ResponseHeader { revision: self.kv.revision() }
    }

    pub fn range(&self, r: &RangeRequest) -> RangeResponse {
        let main = self.kv.read_revision(r.revision).expect("read revisions are checked before a txn writes");
        range_read::read(self.kv, r, main, self.config)
    }

    pub fn put(&mut self, p: &PutRequest) -> PutResponse {
        let (prev_kv, old_lease, lease) = self.kv.put_with(&p.key, |prev| {
            let prev_kv = prev.filter(|_| p.prev_kv).map(|(rev, live)| key_history::to_key_value(&p.key, rev, live));
            let old_lease = prev.map_or(NO_LEASE, |(_, live)| live.lease);
            let value = match (p.ignore_value, prev) {
                (true, Some((_, live))) => live.value.clone(),
                (true, None) => unreachable!("ignore_value on a missing key is refused before the txn writes"),
                (false, _) => p.value.clone(),
            };
            let lease = if p.ignore_lease { old_lease } else { p.lease };
            (value, lease, (prev_kv, old_lease, lease))
        });
        self.leases.detach(old_lease, &p.key);
        self.leases.attach(lease, &p.key);
        PutResponse { header: self.header(), prev_kv }
    }

    pub fn delete_range(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let deleted = self.kv.delete_range(&KeyRange::new(&d.key, &d.range_end), d.prev_kv);
        for gone in &deleted {
            self.leases.detach(gone.lease, &gone.key);
        }
        let count = deleted.len() as u64;
        let prev_kvs = deleted.into_iter().filter_map(|gone| gone.prev).collect();
        DeleteRangeResponse { header: self.header(), deleted: count, prev_kvs }
    }

    /// Runs the branch `path` chose for `t` and, depth first, for the txns
    /// nested in it (the order `txn_path::compute` wrote the path in).
    pub fn txn(&mut self, t: &TxnRequest, path: &mut std::slice::Iter<'_, bool>, nested: bool) -> TxnResponse {
        let succeeded = *path.next().expect("the path has one entry per txn on the chosen branches");
        let ops = if succeeded { &t.success } else { &t.failure };
        let responses = ops
            .iter()
            .map(|op| match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range(r)),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(d)),
                RequestOp::Txn(inner) => ResponseOp::Txn(self.txn(inner, path, true)),
            })
            .collect();
        // etcd fills in only the outer txn's header; nested ones stay empty.
        let header = if nested { ResponseHeader::default() } else { self.header() };
        TxnResponse { header, succeeded, responses }
    }

    /// Deletes the lease and, in this one transaction, every key on it.
    pub fn revoke(&mut self, id: LeaseId) {
        let lease = self.leases.remove(id).expect("revoke is checked to name an existing lease");
        // BTreeSet order: every replica deletes in the same (key) order, as etcd sorts them.
        for key in &lease.keys {
            let gone = self.kv.delete_range(&KeyRange::single(key), false);
            assert!(gone.len() == 1 && gone[0].lease == id, "a key in a lease's key set is live and on that lease");
        }
    }
}
