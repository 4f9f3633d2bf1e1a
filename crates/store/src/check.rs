//! The checks etcd makes before a request reaches its state machine.
//!
//! In: a request and the store's limits. Out: `Ok` or the error etcd's API
//! layer would give: request size, empty keys, `ignore_value`/`ignore_lease`
//! misuse, the txn op budget (nested txns get what their parent left, as in
//! etcd's `checkTxnRequest`) and the rule that a txn may not write a key
//! twice (etcd's `checkIntervals`, including its treatment of a delete's
//! `range_end` as a literal interval end). Also the quota cost of a request.
//! None of this reads the store.

use crate::config::{ENTRY_OVERHEAD_BYTES, LEASE_OVERHEAD_BYTES, StoreConfig};
use crate::error::StoreError;
use crate::lease_id::NO_LEASE;
use crate::request::{DeleteRangeRequest, PutRequest, RangeRequest, Request, RequestOp, TxnRequest};
use std::collections::BTreeSet;

/// Checks `req` as etcd's gRPC layer would.
pub(crate) fn check_request(req: &Request, config: &StoreConfig) -> Result<(), StoreError> {
    match req {
        Request::Range(r) => check_range_request(r, config),
        Request::Put(r) => check_sizes_put(r, config).and_then(|()| check_put(r)),
        Request::DeleteRange(r) => check_bytes(r.key.len() + r.range_end.len(), config).and_then(|()| check_delete(r)),
        Request::Txn(t) => check_txn_request(t, config),
        Request::Compact(_)
        | Request::LeaseGrant(_)
        | Request::LeaseGrantMs(_)
        | Request::LeaseRevoke(_)
        | Request::LeaseTimeToLive(_)
        | Request::LeaseLeases => Ok(()),
    }
}

fn check_txn_request(t: &TxnRequest, config: &StoreConfig) -> Result<(), StoreError> {
    let mut size = Size::default();
    size.add_txn(t, config, 0)?;
    if size.bytes > config.request_bytes_max {
        return Err(StoreError::RequestTooLarge);
    }
    if size.ops > config.txn_ops_total_len_max {
        return Err(StoreError::TooManyOps);
    }
    check_txn(t, config.txn_ops_len_max)?;
    // After the cheap checks, as etcd does, since this one is quadratic.
    check_intervals(&t.success)?;
    check_intervals(&t.failure)?;
    Ok(())
}

/// The checks of a range read, which may also come outside the log.
pub(crate) fn check_range_request(r: &RangeRequest, config: &StoreConfig) -> Result<(), StoreError> {
    check_bytes(r.key.len() + r.range_end.len(), config).and_then(|()| check_range(r))
}

fn check_bytes(bytes: usize, config: &StoreConfig) -> Result<(), StoreError> {
    if bytes as u64 > config.request_bytes_max { Err(StoreError::RequestTooLarge) } else { Ok(()) }
}

fn check_sizes_put(r: &PutRequest, config: &StoreConfig) -> Result<(), StoreError> {
    let too_large = r.key.len() as u64 > config.key_bytes_max
        || r.value.len() as u64 > config.value_bytes_max
        || (r.key.len() + r.value.len()) as u64 > config.request_bytes_max;
    if too_large { Err(StoreError::RequestTooLarge) } else { Ok(()) }
}

/// Bytes and op count of a request, every nesting level included.
#[derive(Default)]
struct Size {
    bytes: u64,
    ops: u64,
}

impl Size {
    fn add_txn(&mut self, t: &TxnRequest, config: &StoreConfig, depth: u64) -> Result<(), StoreError> {
        self.ops += (t.compare.len() + t.success.len() + t.failure.len()) as u64;
        // Stop early: a hostile request could otherwise make this walk long
        // or deep. etcd's budget rule already refuses nesting deeper than
        // the op budget (each level spends at least one op), so this
        // refuses nothing etcd accepts.
        if self.ops > config.txn_ops_total_len_max || depth > config.txn_ops_len_max {
            return Err(StoreError::TooManyOps);
        }
        for c in &t.compare {
            self.bytes += (c.key.len() + c.range_end.len()) as u64;
            if let crate::request::CompareTarget::Value(v) = &c.target {
                self.bytes += v.len() as u64;
            }
        }
        for op in t.success.iter().chain(&t.failure) {
            match op {
                RequestOp::Range(r) => self.bytes += (r.key.len() + r.range_end.len()) as u64,
                RequestOp::Put(p) => {
                    check_sizes_put(p, config)?;
                    self.bytes += (p.key.len() + p.value.len()) as u64;
                }
                RequestOp::DeleteRange(d) => self.bytes += (d.key.len() + d.range_end.len()) as u64,
                RequestOp::Txn(inner) => self.add_txn(inner, config, depth + 1)?,
            }
        }
        Ok(())
    }
}

fn check_range(r: &RangeRequest) -> Result<(), StoreError> {
    if r.key.is_empty() { Err(StoreError::EmptyKey) } else { Ok(()) }
}

fn check_put(r: &PutRequest) -> Result<(), StoreError> {
    if r.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if r.ignore_lease && r.lease != NO_LEASE {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

fn check_delete(r: &DeleteRangeRequest) -> Result<(), StoreError> {
    if r.key.is_empty() { Err(StoreError::EmptyKey) } else { Ok(()) }
}

/// etcd's `checkTxnRequest`: no list longer than the budget, and nested
/// txns get the budget minus the longest list of their parent.
fn check_txn(t: &TxnRequest, ops_len_max: u64) -> Result<(), StoreError> {
    let longest = t.compare.len().max(t.success.len()).max(t.failure.len()) as u64;
    if longest > ops_len_max {
        return Err(StoreError::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(StoreError::EmptyKey);
    }
    for op in t.success.iter().chain(&t.failure) {
        match op {
            RequestOp::Range(r) => check_range(r)?,
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) => check_delete(d)?,
            RequestOp::Txn(inner) => check_txn(inner, ops_len_max - longest)?,
        }
    }
    Ok(())
}

/// Deleted key sets: a point (empty range_end) or `[start, end)` compared
/// bytewise, so a range_end of `"\0"` covers nothing here, exactly as in
/// etcd's interval tree.
#[derive(Default)]
struct Deletes<'a>(Vec<(&'a [u8], Option<&'a [u8]>)>);

impl<'a> Deletes<'a> {
    fn add(&mut self, d: &'a DeleteRangeRequest) {
        let end = (!d.range_end.is_empty()).then_some(d.range_end.as_slice());
        self.0.push((&d.key, end));
    }

    fn hits(&self, key: &[u8]) -> bool {
        self.0.iter().any(|&(start, end)| match end {
            None => start == key,
            Some(end) => start <= key && key < end,
        })
    }
}

/// etcd's `checkIntervals`: within one list (and the txns nested in it), no
/// key is put twice or put and deleted; the two branches of one nested txn
/// may put the same key, since only one of them runs.
fn check_intervals(ops: &[RequestOp]) -> Result<(BTreeSet<&[u8]>, Deletes<'_>), StoreError> {
    let mut dels = Deletes::default();
    for op in ops {
        if let RequestOp::DeleteRange(d) = op {
            dels.add(d);
        }
    }
    let mut puts: BTreeSet<&[u8]> = BTreeSet::new();
    for op in ops {
        let RequestOp::Txn(inner) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&inner.success)?;
        let (puts_else, dels_else) = check_intervals(&inner.failure)?;
        for &k in &puts_then {
            if puts.contains(k) || dels.hits(k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k);
        }
        for &k in &puts_else {
            if (puts.contains(k) && !puts_then.contains(k)) || dels.hits(k) {
                return Err(StoreError::DuplicateKey);
            }
            puts.insert(k);
        }
        dels.0.extend(dels_then.0);
        dels.0.extend(dels_else.0);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if !puts.insert(p.key.as_slice()) || dels.hits(&p.key) {
            return Err(StoreError::DuplicateKey);
        }
    }
    Ok((puts, dels))
}

/// What a request would add to the quota, as etcd's quota estimates it
/// (puts and lease grants cost; a txn costs its dearer branch).
pub(crate) fn quota_cost(req: &Request) -> u64 {
    match req {
        Request::Put(p) => put_cost(p),
        Request::Txn(t) => txn_cost(t),
        Request::LeaseGrant(_) | Request::LeaseGrantMs(_) => LEASE_OVERHEAD_BYTES,
        _ => 0,
    }
}

fn put_cost(p: &PutRequest) -> u64 {
    (p.key.len() + p.value.len()) as u64 + ENTRY_OVERHEAD_BYTES
}

fn txn_cost(t: &TxnRequest) -> u64 {
    let branch = |ops: &[RequestOp]| -> u64 {
        ops.iter()
            .map(|op| match op {
                RequestOp::Put(p) => put_cost(p),
                RequestOp::Txn(inner) => txn_cost(inner),
                _ => 0,
            })
            .sum()
    };
    branch(&t.success).max(branch(&t.failure))
}
