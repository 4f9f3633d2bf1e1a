//! Txn compares, evaluated as etcd evaluates them.
//!
//! In: the keyspace before the txn writes anything, and a compare. Out:
//! whether it holds. A compare over a range holds when every key in it
//! satisfies it; over no existing key, version, create, mod and lease
//! compare against 0 while a value compare always fails (etcd cannot tell
//! a missing value from an empty one, so it refuses to guess).

use crate::key_history::Live;
use crate::key_range::KeyRange;
use crate::keyspace::Keyspace;
use crate::lease_id::NO_LEASE;
use crate::request::{Compare, CompareResult, CompareTarget};
use std::cmp::Ordering;

/// Whether every compare holds, stopping at the first that does not.
pub(crate) fn all_hold(ks: &Keyspace, compares: &[Compare]) -> bool {
    compares.iter().all(|c| holds(ks, c))
}

fn holds(ks: &Keyspace, c: &Compare) -> bool {
    let range = KeyRange::new(&c.key, &c.range_end);
    let mut seen = false;
    for (_, rev, live) in ks.live_at(&range, ks.revision()) {
        seen = true;
        if !accepts(c.result, ordering(&c.target, Some((rev.main, live)))) {
            return false;
        }
    }
    seen || (!matches!(c.target, CompareTarget::Value(_)) && accepts(c.result, ordering(&c.target, None)))
}

/// How the key's field compares with the operand; a missing key has zeros.
fn ordering(target: &CompareTarget, kv: Option<(u64, &Live)>) -> Ordering {
    let field = |f: fn(u64, &Live) -> u64| kv.map_or(0, |(m, l)| f(m, l));
    match target {
        CompareTarget::Version(v) => field(|_, l| l.version).cmp(v),
        CompareTarget::Create(v) => field(|_, l| l.create_revision).cmp(v),
        CompareTarget::Mod(v) => field(|m, _| m).cmp(v),
        CompareTarget::Lease(v) => kv.map_or(NO_LEASE, |(_, l)| l.lease).cmp(v),
        CompareTarget::Value(v) => kv.map_or(&[][..], |(_, l)| l.value.as_slice()).cmp(v.as_slice()),
    }
}

fn accepts(result: CompareResult, ord: Ordering) -> bool {
    match result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}
