//! Range reads, as etcd's `Range` answers them.
//!
//! In: the keyspace, a range request whose revision has been checked, and
//! the store's limits. Out: the range response: `count` is every key in the
//! range at the read revision; the key-values are filtered by the min/max
//! revision options, sorted, cut to `limit` (setting `more`), then cut to
//! the store's answer bounds (setting `more` too).
//!
//! etcd's quirk is kept: without a sort order or filter, only `limit + 1`
//! keys (in key order) are fetched, and a non-key sort target with order
//! NONE sorts just those ascending.

use crate::config::StoreConfig;
use crate::key_history::{self, Live};
use crate::key_range::KeyRange;
use crate::keyspace::Keyspace;
use crate::request::{RangeRequest, SortOrder, SortTarget};
use crate::response::{RangeResponse, ResponseHeader};
use crate::revision::Revision;
use std::cmp::Ordering;

type Found<'a> = (&'a [u8], Revision, &'a Live);

/// Answers `r` reading at `main` (a revision already checked against the
/// compaction point and the current revision).
pub(crate) fn read(ks: &Keyspace, r: &RangeRequest, main: u64, config: &StoreConfig) -> RangeResponse {
    let range = KeyRange::new(&r.key, &r.range_end);
    let count = ks.live_at(&range, main).count() as u64;
    let header = ResponseHeader { revision: ks.revision() };
    if r.count_only {
        return RangeResponse { header, kvs: Vec::new(), more: false, count };
    }
    let filtered = r.min_mod_revision | r.max_mod_revision | r.min_create_revision | r.max_create_revision != 0;
    let fetch_len = if r.sort_order != SortOrder::None || filtered || r.limit == 0 {
        usize::MAX
    } else {
        usize::try_from(r.limit).unwrap_or(usize::MAX).saturating_add(1)
    };
    let mut found: Vec<Found> = ks.live_at(&range, main).take(fetch_len).filter(|f| passes_filters(r, f)).collect();
    sort(&mut found, r.sort_order, r.sort_target);
    let mut more = false;
    if r.limit > 0 && found.len() as u64 > r.limit {
        found.truncate(r.limit as usize);
        more = true;
    }
    let kept = answer_len(&found, r.keys_only, config);
    more |= kept < found.len();
    found.truncate(kept);
    let kvs = found
        .into_iter()
        .map(|(key, rev, live)| {
            let mut kv = key_history::to_key_value(key, rev, live);
            if r.keys_only {
                kv.value = Vec::new();
            }
            kv
        })
        .collect();
    RangeResponse { header, kvs, more, count }
}

fn passes_filters(r: &RangeRequest, (_, rev, live): &Found) -> bool {
    let in_bounds = |v: u64, min: u64, max: u64| (min == 0 || v >= min) && (max == 0 || v <= max);
    in_bounds(rev.main, r.min_mod_revision, r.max_mod_revision)
        && in_bounds(live.create_revision, r.min_create_revision, r.max_create_revision)
}

/// Sorts as etcd: a non-key target defaults to ascending, and key order
/// ascending is the order found is already in. Stable, so ties stay in key
/// order (etcd's unstable sort leaves them unspecified).
fn sort(found: &mut [Found], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    let by = |a: &Found, b: &Found| -> Ordering {
        match target {
            SortTarget::Key => a.0.cmp(b.0),
            SortTarget::Version => a.2.version.cmp(&b.2.version),
            SortTarget::Create => a.2.create_revision.cmp(&b.2.create_revision),
            SortTarget::Mod => a.1.main.cmp(&b.1.main),
            SortTarget::Value => a.2.value.cmp(&b.2.value),
        }
    };
    match order {
        SortOrder::Descend => found.sort_by(|a, b| by(b, a)),
        _ => found.sort_by(by),
    }
}

/// How many of `found` fit the store's answer bounds (at least one).
fn answer_len(found: &[Found], keys_only: bool, config: &StoreConfig) -> usize {
    let len_max = usize::try_from(config.range_kvs_len_max).unwrap_or(usize::MAX).max(1);
    let mut bytes = 0u64;
    for (i, (key, _, live)) in found.iter().enumerate().take(len_max) {
        bytes += key.len() as u64 + if keys_only { 0 } else { live.value.len() as u64 };
        if i > 0 && bytes > config.range_response_bytes_max {
            return i;
        }
    }
    found.len().min(len_max)
}
