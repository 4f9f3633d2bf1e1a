//! Compaction against etcd v3's documented behaviour.

use crate::common;
use common::*;
use haven_store::*;

fn compact(s: &mut Store, revision: u64) -> Result<Response, StoreError> {
    s.apply(&Request::Compact(CompactionRequest { revision, physical: false }))
}

fn at(s: &Store, key: &str, revision: u64) -> Result<RangeResponse, StoreError> {
    s.range(&RangeRequest { revision, ..range_req(key, "") })
}

#[test]
fn reads_below_the_compaction_point_fail_and_at_it_succeed() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "a", "3"); // 4
    compact(&mut s, 3).unwrap();
    assert_eq!(at(&s, "a", 2), Err(StoreError::Compacted { compact_revision: 3 }));
    assert_eq!(at(&s, "a", 3).unwrap().kvs[0].value, b"2", "the version visible at the point is kept");
    assert_eq!(at(&s, "a", 4).unwrap().kvs[0].value, b"3");
    assert_eq!(s.revision(), 4, "compaction does not change the revision");
}

#[test]
fn compacting_a_future_or_already_compacted_revision_errors() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    assert_eq!(compact(&mut s, 4), Err(StoreError::FutureRevision { current_revision: 3 }));
    compact(&mut s, 2).unwrap();
    assert_eq!(compact(&mut s, 2), Err(StoreError::Compacted { compact_revision: 2 }));
    assert_eq!(compact(&mut s, 1), Err(StoreError::Compacted { compact_revision: 2 }));
    compact(&mut s, 3).unwrap();
}

#[test]
fn compaction_drops_deleted_keys_and_frees_quota() {
    let mut s = store();
    put(&mut s, "gone", &"x".repeat(1000));
    put(&mut s, "live", "1");
    delete(&mut s, delete_req("gone", ""));
    let before = s.bytes_used();
    let now = s.revision();
    compact(&mut s, now).unwrap();
    assert!(s.bytes_used() + 1000 < before, "{} then {}", before, s.bytes_used());
    assert_eq!(keys_of(&range(&s, range_req("\0", "\0")).kvs), ["live"]);
    let kv = get(&s, "live").unwrap();
    assert_eq!((kv.create_revision, kv.version), (3, 1), "metadata of survivors is untouched");
}

#[test]
fn a_compacted_history_still_counts_versions_on() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    compact(&mut s, 3).unwrap();
    put(&mut s, "a", "3");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.version), (2, 3));
}
