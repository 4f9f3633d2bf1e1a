//! Deciding a txn's branches before it writes, as etcd's `compareToPath`.
//!
//! In: a txn and the keyspace before it. Out: the path (one bool per txn on
//! the chosen branches, depth first: true = success), and the checks that
//! depend on it: each put on the path names an existing lease and, with
//! `ignore_value`/`ignore_lease`, an existing key; each range on the path
//! reads a revision that is neither compacted nor in the future. Every
//! compare sees the state before the txn, nested ones included.

use crate::compare;
use crate::error::StoreError;
use crate::keyspace::Keyspace;
use crate::lease_id::NO_LEASE;
use crate::lease_table::LeaseTable;
use crate::request::{PutRequest, RangeRequest, RequestOp, TxnRequest};

/// The branch each txn on the chosen path takes, depth first.
pub(crate) fn compute(ks: &Keyspace, t: &TxnRequest, path: &mut Vec<bool>) {
    let succeeded = compare::all_hold(ks, &t.compare);
    path.push(succeeded);
    for op in if succeeded { &t.success } else { &t.failure } {
        if let RequestOp::Txn(inner) = op {
            compute(ks, inner, path);
        }
    }
}

/// etcd's `checkRequests` with `checkPut` on the whole path, then with
/// `checkRange` (so a put error wins over a range error).
pub(crate) fn check(ks: &Keyspace, leases: &LeaseTable, t: &TxnRequest, path: &[bool]) -> Result<(), StoreError> {
    visit(t, &mut path.iter(), &mut |op| match op {
        RequestOp::Put(p) => check_put(ks, leases, p),
        _ => Ok(()),
    })?;
    visit(t, &mut path.iter(), &mut |op| match op {
        RequestOp::Range(r) => check_range(ks, r),
        _ => Ok(()),
    })
}

fn visit(
    t: &TxnRequest,
    path: &mut std::slice::Iter<'_, bool>,
    f: &mut dyn FnMut(&RequestOp) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let succeeded = *path.next().expect("the path has one entry per txn on the chosen branches");
    for op in if succeeded { &t.success } else { &t.failure } {
        match op {
            RequestOp::Txn(inner) => visit(inner, path, f)?,
            op => f(op)?,
        }
    }
    Ok(())
}

/// What a put needs from the state: its lease, and the key it keeps parts of.
pub(crate) fn check_put(ks: &Keyspace, leases: &LeaseTable, p: &PutRequest) -> Result<(), StoreError> {
    if (p.ignore_value || p.ignore_lease) && ks.latest(&p.key).is_none() {
        return Err(StoreError::KeyNotFound);
    }
    if p.lease != NO_LEASE && leases.get(p.lease).is_none() {
        return Err(StoreError::LeaseNotFound);
    }
    Ok(())
}

fn check_range(ks: &Keyspace, r: &RangeRequest) -> Result<(), StoreError> {
    ks.read_revision(r.revision).map(|_| ())
}
