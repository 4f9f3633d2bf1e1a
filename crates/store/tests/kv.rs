//! Puts, ranges and deletes against etcd v3's documented behaviour.

use crate::common;
use common::*;
use haven_store::*;

#[test]
fn empty_store_is_at_revision_1_and_the_first_put_makes_2() {
    let mut s = store();
    assert_eq!(s.revision(), 1);
    assert_eq!(range(&s, range_req("a", "")).header.revision, 1);
    let r = put(&mut s, "a", "1");
    assert_eq!(r.header.revision, 2);
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
}

#[test]
fn overwrite_keeps_create_revision_and_bumps_version_and_mod_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "x");
    put(&mut s, "a", "2");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version, kv.value.as_slice()), (2, 4, 2, &b"2"[..]));
}

#[test]
fn version_resets_after_delete() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    delete(&mut s, delete_req("a", ""));
    assert_eq!(get(&s, "a"), None);
    put(&mut s, "a", "3");
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
}

#[test]
fn put_returns_prev_kv_only_when_asked_and_only_if_the_key_existed() {
    let mut s = store();
    let first = put_with(&mut s, PutRequest { prev_kv: true, ..put_req("a", "1") });
    assert_eq!(first.prev_kv, None);
    let second = put_with(&mut s, PutRequest { prev_kv: true, ..put_req("a", "2") });
    let prev = second.prev_kv.unwrap();
    assert_eq!((prev.value.as_slice(), prev.mod_revision, prev.version), (&b"1"[..], 2, 1));
    assert_eq!(put(&mut s, "a", "3").prev_kv, None);
}

#[test]
fn ignore_value_keeps_the_value_and_needs_an_existing_key() {
    let mut s = store();
    let missing = s.apply(&Request::Put(PutRequest { ignore_value: true, ..put_req("a", "") }));
    assert_eq!(missing, Err(StoreError::KeyNotFound));
    assert_eq!(s.revision(), 1, "a refused put changes nothing");
    put(&mut s, "a", "keep");
    put_with(&mut s, PutRequest { ignore_value: true, ..put_req("a", "") });
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.value.as_slice(), kv.version), (&b"keep"[..], 2));
    let provided = s.apply(&Request::Put(PutRequest { ignore_value: true, ..put_req("a", "v") }));
    assert_eq!(provided, Err(StoreError::ValueProvided));
}

#[test]
fn empty_keys_are_refused() {
    let mut s = store();
    assert_eq!(s.apply(&Request::Put(put_req("", "v"))), Err(StoreError::EmptyKey));
    assert_eq!(s.range(&range_req("", "\0")), Err(StoreError::EmptyKey));
    assert_eq!(s.apply(&Request::DeleteRange(delete_req("", "z"))), Err(StoreError::EmptyKey));
}

#[test]
fn range_end_conventions_single_prefix_from_key_and_all() {
    let mut s = store();
    for k in ["a", "ab", "abc", "b", "c"] {
        put(&mut s, k, "v");
    }
    assert_eq!(keys_of(&range(&s, range_req("ab", "")).kvs), ["ab"]);
    let prefix = String::from_utf8(prefix_end(b"ab")).unwrap();
    assert_eq!(keys_of(&range(&s, range_req("ab", &prefix)).kvs), ["ab", "abc"]);
    assert_eq!(keys_of(&range(&s, range_req("b", "\0")).kvs), ["b", "c"]);
    assert_eq!(keys_of(&range(&s, range_req("\0", "\0")).kvs), ["a", "ab", "abc", "b", "c"]);
    assert!(range(&s, range_req("c", "a")).kvs.is_empty(), "an inverted range is empty, not an error");
}

#[test]
fn range_with_limit_returns_more_and_the_full_count() {
    let mut s = store();
    for k in ["a", "b", "c", "d"] {
        put(&mut s, k, "v");
    }
    let r = range(&s, RangeRequest { limit: 2, ..range_req("a", "\0") });
    assert_eq!((keys_of(&r.kvs), r.more, r.count), (vec!["a".to_string(), "b".to_string()], true, 4));
    let r = range(&s, RangeRequest { limit: 4, ..range_req("a", "\0") });
    assert_eq!((r.kvs.len(), r.more, r.count), (4, false, 4));
}

#[test]
fn count_only_and_keys_only() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "2");
    let r = range(&s, RangeRequest { count_only: true, ..range_req("a", "\0") });
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 2, false));
    let r = range(&s, RangeRequest { keys_only: true, ..range_req("a", "\0") });
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty()) && r.kvs.len() == 2);
    assert_eq!(r.kvs[1].mod_revision, 3, "keys_only keeps the metadata");
}

#[test]
fn sort_by_target_and_order() {
    let mut s = store();
    put(&mut s, "a", "3");
    put(&mut s, "b", "1");
    put(&mut s, "c", "2");
    put(&mut s, "b", "1");
    let sorted = |order, target| {
        keys_of(&range(&s, RangeRequest { sort_order: order, sort_target: target, ..range_req("a", "\0") }).kvs)
    };
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Key), ["c", "b", "a"]);
    assert_eq!(sorted(SortOrder::Ascend, SortTarget::Value), ["b", "c", "a"]);
    assert_eq!(sorted(SortOrder::None, SortTarget::Value), ["b", "c", "a"], "a non-key target defaults to ascending");
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Mod), ["b", "c", "a"]);
    assert_eq!(sorted(SortOrder::Descend, SortTarget::Version), ["b", "a", "c"], "ties keep key order");
    let top = range(
        &s,
        RangeRequest {
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Create,
            limit: 1,
            ..range_req("a", "\0")
        },
    );
    assert_eq!(
        (keys_of(&top.kvs), top.more, top.count),
        (vec!["c".to_string()], true, 3),
        "sorts everything, then limits"
    );
}

#[test]
fn min_max_revision_filters_do_not_change_count() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    put(&mut s, "c", "1");
    let r = range(&s, RangeRequest { min_mod_revision: 3, max_mod_revision: 3, ..range_req("a", "\0") });
    assert_eq!((keys_of(&r.kvs), r.count), (vec!["b".to_string()], 3));
}

#[test]
fn read_at_a_past_revision_sees_the_past() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    delete(&mut s, delete_req("a", ""));
    let at = |rev| range(&s, RangeRequest { revision: rev, ..range_req("a", "") });
    assert_eq!(at(2).kvs[0].value, b"1");
    assert_eq!(at(3).kvs[0].value, b"2");
    assert!(at(4).kvs.is_empty());
    assert!(at(1).kvs.is_empty());
    assert_eq!(at(2).header.revision, 4, "the header carries the current revision, not the read one");
    assert_eq!(
        s.range(&RangeRequest { revision: 5, ..range_req("a", "") }),
        Err(StoreError::FutureRevision { current_revision: 4 })
    );
}

#[test]
fn delete_by_prefix_deletes_in_one_revision_and_returns_prev_kvs() {
    let mut s = store();
    for k in ["p/1", "p/2", "p/3", "q"] {
        put(&mut s, k, k);
    }
    let prefix = String::from_utf8(prefix_end(b"p/")).unwrap();
    let r = delete(&mut s, DeleteRangeRequest { prev_kv: true, ..delete_req("p/", &prefix) });
    assert_eq!((r.deleted, r.header.revision), (3, 6));
    assert_eq!(keys_of(&r.prev_kvs), ["p/1", "p/2", "p/3"]);
    assert_eq!(keys_of(&range(&s, range_req("\0", "\0")).kvs), ["q"]);
}

#[test]
fn deleting_nothing_does_not_bump_the_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let r = delete(&mut s, delete_req("zzz", ""));
    assert_eq!((r.deleted, r.header.revision, s.revision()), (0, 2, 2));
}

#[test]
fn oversized_keys_and_values_are_refused_as_etcd_does() {
    let config = StoreConfig { key_bytes_max: 4, value_bytes_max: 8, ..StoreConfig::default() };
    let mut s = Store::new(config);
    assert_eq!(s.apply(&Request::Put(put_req("12345", "v"))), Err(StoreError::RequestTooLarge));
    assert_eq!(s.apply(&Request::Put(put_req("k", "123456789"))), Err(StoreError::RequestTooLarge));
    assert!(s.apply(&Request::Put(put_req("1234", "12345678"))).is_ok());
}

#[test]
fn quota_refuses_puts_but_still_allows_deletes() {
    let mut s = Store::new(StoreConfig { quota_bytes_max: 1_000, ..StoreConfig::default() });
    put(&mut s, "a", &"x".repeat(400));
    assert_eq!(s.apply(&Request::Put(put_req("b", &"x".repeat(400)))), Err(StoreError::NoSpace));
    assert_eq!(delete(&mut s, delete_req("a", "")).deleted, 1);
}

#[test]
fn range_answers_are_bounded_and_say_more() {
    let config = StoreConfig { range_kvs_len_max: 2, range_response_bytes_max: 10, ..StoreConfig::default() };
    let mut s = Store::new(config);
    for k in ["a", "b", "c"] {
        put(&mut s, k, "1234");
    }
    let r = range(&s, range_req("a", "\0"));
    assert_eq!((r.kvs.len(), r.more, r.count), (2, true, 3), "cut at 2 key-values");
    put(&mut s, "a", "123456789012");
    let r = range(&s, range_req("a", "\0"));
    assert_eq!((r.kvs.len(), r.more), (1, true), "one key-value always comes, even above the byte bound");
}
