//! Transactions against etcd v3's documented behaviour: compares, branches,
//! nesting, the op budget, the duplicate-key rule, atomicity.

use crate::common;
use common::*;
use haven_store::*;

fn put_op(key: &str, value: &str) -> RequestOp {
    RequestOp::Put(put_req(key, value))
}

fn get_op(key: &str) -> RequestOp {
    RequestOp::Range(range_req(key, ""))
}

#[test]
fn a_txn_with_several_writes_bumps_the_revision_once() {
    let mut s = store();
    let r =
        txn(&mut s, TxnRequest { success: vec![put_op("a", "1"), put_op("b", "2")], ..TxnRequest::default() }).unwrap();
    assert!(r.succeeded);
    assert_eq!((r.header.revision, s.revision()), (2, 2));
    assert_eq!(get(&s, "a").unwrap().mod_revision, 2);
    assert_eq!(get(&s, "b").unwrap().mod_revision, 2);
}

#[test]
fn a_read_only_txn_does_not_bump_the_revision() {
    let mut s = store();
    put(&mut s, "a", "1");
    let r = txn(&mut s, TxnRequest { success: vec![get_op("a")], ..TxnRequest::default() }).unwrap();
    assert_eq!((r.header.revision, s.revision()), (2, 2));
}

#[test]
fn compares_choose_the_branch_on_each_target() {
    let mut s = store();
    put(&mut s, "a", "x");
    put(&mut s, "a", "y");
    let holds =
        |s: &mut Store, c: Compare| txn(s, TxnRequest { compare: vec![c], ..TxnRequest::default() }).unwrap().succeeded;
    use CompareResult::*;
    assert!(holds(&mut s, compare("a", Equal, CompareTarget::Value(b"y".to_vec()))));
    assert!(holds(&mut s, compare("a", Greater, CompareTarget::Value(b"x".to_vec()))));
    assert!(holds(&mut s, compare("a", Equal, CompareTarget::Version(2))));
    assert!(holds(&mut s, compare("a", Less, CompareTarget::Version(3))));
    assert!(holds(&mut s, compare("a", Equal, CompareTarget::Create(2))));
    assert!(holds(&mut s, compare("a", Equal, CompareTarget::Mod(3))));
    assert!(holds(&mut s, compare("a", NotEqual, CompareTarget::Mod(2))));
    assert!(holds(&mut s, compare("a", Equal, CompareTarget::Lease(0))));
    assert!(!holds(&mut s, compare("a", Greater, CompareTarget::Version(2))));
}

#[test]
fn a_missing_key_compares_as_zeros_but_never_on_value() {
    let mut s = store();
    use CompareResult::*;
    let holds =
        |s: &mut Store, c: Compare| txn(s, TxnRequest { compare: vec![c], ..TxnRequest::default() }).unwrap().succeeded;
    assert!(holds(&mut s, compare("nope", Equal, CompareTarget::Version(0))), "the create-if-absent idiom");
    assert!(holds(&mut s, compare("nope", Equal, CompareTarget::Create(0))));
    assert!(!holds(&mut s, compare("nope", Equal, CompareTarget::Value(Vec::new()))));
    assert!(!holds(&mut s, compare("nope", NotEqual, CompareTarget::Value(b"x".to_vec()))));
}

#[test]
fn a_compare_over_a_range_needs_every_key_to_satisfy_it() {
    let mut s = store();
    put(&mut s, "k1", "1");
    put(&mut s, "k2", "1");
    put(&mut s, "k2", "2");
    let c = Compare { range_end: b"k3".to_vec(), ..compare("k1", CompareResult::Equal, CompareTarget::Version(1)) };
    assert!(!txn(&mut s, TxnRequest { compare: vec![c.clone()], ..TxnRequest::default() }).unwrap().succeeded);
    let c = Compare { target: CompareTarget::Version(3), result: CompareResult::Less, ..c };
    assert!(txn(&mut s, TxnRequest { compare: vec![c], ..TxnRequest::default() }).unwrap().succeeded);
}

#[test]
fn failure_branch_runs_and_reads_see_earlier_writes_of_the_same_txn() {
    let mut s = store();
    put(&mut s, "a", "1");
    let t = TxnRequest {
        compare: vec![compare("a", CompareResult::Equal, CompareTarget::Value(b"2".to_vec()))],
        success: vec![put_op("a", "never")],
        failure: vec![get_op("b"), put_op("b", "new"), get_op("b")],
    };
    let r = txn(&mut s, t).unwrap();
    assert!(!r.succeeded);
    let ResponseOp::Range(before) = &r.responses[0] else { panic!("{r:?}") };
    let ResponseOp::Range(after) = &r.responses[2] else { panic!("{r:?}") };
    assert!(before.kvs.is_empty());
    assert_eq!(before.header.revision, 2, "before any write: the txn's start revision");
    assert_eq!((after.kvs[0].value.as_slice(), after.header.revision), (&b"new"[..], 3));
    assert_eq!(get(&s, "a").unwrap().value, b"1");
}

#[test]
fn nested_txns_decide_on_the_state_before_the_outer_txn_writes() {
    let mut s = store();
    let inner = TxnRequest {
        compare: vec![compare("a", CompareResult::Equal, CompareTarget::Version(0))],
        success: vec![put_op("inner", "saw-a-missing")],
        failure: vec![put_op("inner", "saw-a-present")],
    };
    let outer = TxnRequest { success: vec![put_op("a", "1"), RequestOp::Txn(inner)], ..TxnRequest::default() };
    let r = txn(&mut s, outer).unwrap();
    assert_eq!(get(&s, "inner").unwrap().value, b"saw-a-missing", "etcd evaluates every compare first");
    let ResponseOp::Txn(nested) = &r.responses[1] else { panic!("{r:?}") };
    assert!(nested.succeeded);
    assert_eq!(nested.header.revision, 0, "etcd leaves nested txn headers empty");
    assert_eq!(r.header.revision, 2, "one revision for the whole tree");
    assert_eq!(get(&s, "inner").unwrap().mod_revision, get(&s, "a").unwrap().mod_revision);
}

#[test]
fn a_txn_may_not_write_the_same_key_twice() {
    let mut s = store();
    let twice = TxnRequest { success: vec![put_op("a", "1"), put_op("a", "2")], ..TxnRequest::default() };
    assert_eq!(txn(&mut s, twice), Err(StoreError::DuplicateKey));
    let put_and_delete = TxnRequest {
        success: vec![put_op("b", "1"), RequestOp::DeleteRange(delete_req("a", "c"))],
        ..TxnRequest::default()
    };
    assert_eq!(txn(&mut s, put_and_delete), Err(StoreError::DuplicateKey));
    let nested_clash = TxnRequest {
        success: vec![
            put_op("a", "1"),
            RequestOp::Txn(TxnRequest { success: vec![put_op("a", "2")], ..TxnRequest::default() }),
        ],
        ..TxnRequest::default()
    };
    assert_eq!(txn(&mut s, nested_clash), Err(StoreError::DuplicateKey));
    assert_eq!(s.revision(), 1, "refused txns change nothing");
}

#[test]
fn the_branches_of_one_nested_txn_may_put_the_same_key_and_branches_are_checked_apart() {
    let mut s = store();
    let inner =
        TxnRequest { success: vec![put_op("a", "then")], failure: vec![put_op("a", "else")], ..TxnRequest::default() };
    let t = TxnRequest {
        success: vec![RequestOp::Txn(inner)],
        failure: vec![put_op("a", "outer-else")],
        ..TxnRequest::default()
    };
    assert!(txn(&mut s, t).is_ok());
    let two_deletes = TxnRequest {
        success: vec![RequestOp::DeleteRange(delete_req("a", "z")), RequestOp::DeleteRange(delete_req("a", ""))],
        ..TxnRequest::default()
    };
    assert!(txn(&mut s, two_deletes).is_ok(), "overlapping deletes are allowed");
}

#[test]
fn etcd_lets_a_nul_range_end_delete_and_a_put_of_a_covered_key_share_a_txn() {
    // etcd's interval tree reads the "\0" end literally, so this passes its
    // duplicate check and runs: the delete, then the put.
    let mut s = store();
    put(&mut s, "k", "old");
    let t = TxnRequest {
        success: vec![RequestOp::DeleteRange(delete_req("a", "\0")), put_op("k", "new")],
        ..TxnRequest::default()
    };
    txn(&mut s, t).unwrap();
    let kv = get(&s, "k").unwrap();
    assert_eq!((kv.value.as_slice(), kv.version, kv.create_revision), (&b"new"[..], 1, 3));
    let events = s.events_since(3, &KeyRange::single(b"k"), 100).unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Delete, EventKind::Put]);
    assert_eq!(Store::restore(&s.snapshot().unwrap(), StoreConfig::default()).unwrap(), s);
}

#[test]
fn too_many_ops_counts_each_list_and_shrinks_the_budget_of_nested_txns() {
    let mut s = Store::new(StoreConfig { txn_ops_len_max: 3, ..StoreConfig::default() });
    let ops = |n: usize| (0..n).map(|i| put_op(&format!("k{i}"), "v")).collect::<Vec<_>>();
    assert!(txn(&mut s, TxnRequest { success: ops(3), failure: ops(3), ..TxnRequest::default() }).is_ok());
    assert_eq!(txn(&mut s, TxnRequest { success: ops(4), ..TxnRequest::default() }), Err(StoreError::TooManyOps));
    // The outer list has 2 ops, so the nested txn may have 1.
    let nested = |n| TxnRequest {
        success: vec![RequestOp::Txn(TxnRequest { success: ops(n), ..TxnRequest::default() }), get_op("x")],
        ..TxnRequest::default()
    };
    assert!(txn(&mut s, nested(1)).is_ok());
    assert_eq!(txn(&mut s, nested(2)), Err(StoreError::TooManyOps));
}

#[test]
fn a_txn_fails_whole_when_an_op_on_the_chosen_path_cannot_run() {
    let mut s = store();
    put(&mut s, "a", "1");
    let bad_lease = TxnRequest {
        success: vec![put_op("b", "1"), RequestOp::Put(PutRequest { lease: 99, ..put_req("c", "1") })],
        ..TxnRequest::default()
    };
    assert_eq!(txn(&mut s, bad_lease), Err(StoreError::LeaseNotFound));
    let future_read = TxnRequest {
        success: vec![put_op("b", "1"), RequestOp::Range(RangeRequest { revision: 3, ..range_req("a", "") })],
        ..TxnRequest::default()
    };
    assert_eq!(txn(&mut s, future_read), Err(StoreError::FutureRevision { current_revision: 2 }));
    assert_eq!((s.revision(), get(&s, "b")), (2, None));
    let bad_but_not_chosen = TxnRequest {
        success: vec![put_op("b", "1")],
        failure: vec![RequestOp::Put(PutRequest { lease: 99, ..put_req("c", "1") })],
        ..TxnRequest::default()
    };
    assert!(txn(&mut s, bad_but_not_chosen).is_ok(), "only the chosen path is checked against the state");
}

#[test]
fn an_empty_compare_key_is_refused() {
    let mut s = store();
    let t = TxnRequest {
        compare: vec![compare("", CompareResult::Equal, CompareTarget::Version(0))],
        ..TxnRequest::default()
    };
    assert_eq!(txn(&mut s, t), Err(StoreError::EmptyKey));
}

#[test]
fn deep_nesting_is_refused_by_the_op_budget_without_deep_recursion() {
    let mut s = store();
    let mut t = TxnRequest { success: vec![put_op("leaf", "v")], ..TxnRequest::default() };
    for _ in 0..128 {
        t = TxnRequest { success: vec![RequestOp::Txn(t)], ..TxnRequest::default() };
    }
    assert_eq!(txn(&mut s, t), Err(StoreError::TooManyOps), "129 levels exceed a budget of 128");
    let mut shallow = TxnRequest { success: vec![put_op("leaf", "v")], ..TxnRequest::default() };
    for _ in 0..100 {
        shallow = TxnRequest { success: vec![RequestOp::Txn(shallow)], ..TxnRequest::default() };
    }
    assert!(txn(&mut s, shallow).unwrap().succeeded, "etcd accepts 101 levels of one op each");
    assert_eq!(get(&s, "leaf").unwrap().value, b"v");
}
