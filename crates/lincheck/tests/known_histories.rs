//! The checker on hand-written histories whose answer is known: each test
//! names the property (or anomaly) it checks. Revisions start at 1 as in etcd,
//! so the first change gets revision 2.

use crate::support;

use haven_lincheck::{Limits, Partition, TxnOutcome, Verdict, check};
use support::*;

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    // The two puts overlap; the store ordered b before a.
    let a_last = [put(1, 0, 10, "x", "a", 3), put(2, 0, 10, "x", "b", 2), get(3, 20, 30, "x", Some(("a", 3, 2)), 3)];
    assert_linearizable(&a_last);
    // The store ordered a before b.
    let b_last = [put(1, 0, 10, "x", "a", 2), put(2, 0, 10, "x", "b", 3), get(3, 20, 30, "x", Some(("b", 3, 2)), 3)];
    assert_linearizable(&b_last);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_it_or_not() {
    let before = [put(1, 0, 10, "x", "a", 2), put(1, 20, 40, "x", "b", 3), get(2, 25, 30, "x", Some(("a", 2, 1)), 2)];
    assert_linearizable(&before);
    let after = [put(1, 0, 10, "x", "a", 2), put(1, 20, 40, "x", "b", 3), get(2, 25, 30, "x", Some(("b", 3, 2)), 3)];
    assert_linearizable(&after);
}

#[test]
fn a_timed_out_write_may_have_taken_effect() {
    let history =
        [put(1, 0, 10, "x", "a", 2), put_timeout(1, 20, "x", "b"), get(2, 100, 110, "x", Some(("b", 3, 2)), 3)];
    assert_linearizable(&history);
}

#[test]
fn a_timed_out_write_may_not_have_taken_effect() {
    let history =
        [put(1, 0, 10, "x", "a", 2), put_timeout(1, 20, "x", "b"), get(2, 100, 110, "x", Some(("a", 2, 1)), 2)];
    assert_linearizable(&history);
}

#[test]
fn a_timed_out_write_takes_effect_at_most_once() {
    // Seen, then unseen: the value flaps back.
    let history = [
        put(1, 0, 10, "x", "a", 2),
        put_timeout(1, 20, "x", "b"),
        get(2, 100, 110, "x", Some(("b", 3, 2)), 3),
        get(2, 120, 130, "x", Some(("a", 2, 1)), 3),
    ];
    let text = assert_violation(&history, &[1, 3]);
    assert!(text.contains("op #3"), "the explanation names the read that cannot take effect: {text}");
}

#[test]
fn a_timed_out_write_must_take_effect_after_its_call() {
    let history = [put(1, 0, 10, "x", "a", 2), get(2, 20, 30, "x", Some(("b", 3, 2)), 3), put_timeout(1, 40, "x", "b")];
    assert_violation(&history, &[1]);
}

#[test]
fn stale_read_after_a_partition_is_caught_by_revisions() {
    // Client 3 reads from the old leader cut off in a minority: it still
    // answers from revision 2 after revision 3 was acknowledged.
    let history = [put(1, 0, 10, "x", "a", 2), put(2, 20, 30, "x", "b", 3), get(3, 40, 50, "x", Some(("a", 2, 1)), 2)];
    let text = assert_violation(&history, &[1, 2]);
    assert!(text.contains("backwards"), "{text}");
}

#[test]
fn stale_read_with_a_fresh_header_is_caught_per_key() {
    // The header revision is recent (a change to another key) but the value is old.
    let history = [
        put(1, 0, 10, "x", "a", 2),
        put(2, 20, 30, "x", "b", 3),
        put(2, 32, 35, "y", "c", 4),
        get(3, 40, 50, "x", Some(("a", 2, 1)), 4),
    ];
    let verdict = verdict(&history);
    let violation = verdict.violation().expect("a violation");
    assert_eq!(violation.partition, Partition::Key(b("x")));
    assert_eq!(violation.ops, vec![1, 3], "the write that should have been visible, then the read: {verdict}");
    assert!(violation.explanation.contains("stale read"), "{verdict}");
}

#[test]
fn stale_read_of_a_deleted_key_is_caught() {
    let history = [put(1, 0, 10, "x", "a", 2), delete(1, 20, 30, "x", 1, 3), get(2, 40, 50, "x", Some(("a", 2, 1)), 3)];
    assert_violation(&history, &[1, 2]);
}

#[test]
fn lost_update_two_read_modify_writes_on_the_same_version() {
    let history = [
        put(1, 0, 10, "x", "a", 2),
        cas_version((1, 20, 40), "x", 1, "b", Some(TxnOutcome::Put), 3),
        cas_version((2, 20, 40), "x", 1, "c", Some(TxnOutcome::Put), 4),
    ];
    let text = assert_violation(&history, &[1, 2]);
    assert!(text.contains("lost update"), "{text}");
}

#[test]
fn lost_update_is_caught_by_the_search_when_deletes_could_reset_versions() {
    // A delete in the history makes the direct rule inapplicable; the model still refuses.
    let history = [
        put(1, 0, 10, "x", "a", 2),
        cas_version((1, 20, 40), "x", 1, "b", Some(TxnOutcome::Put), 3),
        cas_version((2, 20, 40), "x", 1, "c", Some(TxnOutcome::Put), 4),
        delete(3, 50, 60, "x", 1, 5),
    ];
    let text = assert_violation(&history, &[2]);
    assert!(text.contains("compare"), "the explanation says a compare could not hold: {text}");
}

#[test]
fn create_delete_create_under_mod_revision_zero_is_no_lost_update() {
    // Found by the real-process fault test: a missing key has mod_revision 0
    // (etcd's rule), so "create if absent" succeeds again after a delete.
    let absent = |at: (u64, u64, u64), value: &str, revision: u64| {
        let mut op = cas_version(at, "x", 0, value, Some(TxnOutcome::Put), revision);
        if let haven_lincheck::Input::Txn { compare, .. } = &mut op.input {
            compare.target = haven_lincheck::CompareTarget::ModRevision(0);
        }
        op
    };
    let history = [absent((1, 0, 10), "a", 2), delete(1, 20, 30, "x", 1, 3), absent((1, 40, 50), "b", 4)];
    assert_linearizable(&history);
    let without_the_delete = [absent((1, 0, 10), "a", 2), absent((2, 20, 30), "b", 3)];
    let text = assert_violation(&without_the_delete, &[1]);
    assert!(text.contains("compare"), "{text}");
}

#[test]
fn read_of_a_value_never_written() {
    let history = [put(1, 0, 10, "x", "a", 2), get(2, 20, 30, "x", Some(("z", 2, 1)), 2)];
    let text = assert_violation(&history, &[1]);
    assert!(text.contains("\"z\""), "the explanation names the value: {text}");
}

#[test]
fn read_of_a_revision_owned_by_another_key() {
    let history = [put_timeout(1, 0, "x", "a"), put(2, 0, 10, "y", "b", 2), get(3, 20, 30, "x", Some(("a", 2, 1)), 2)];
    assert_violation(&history, &[1, 2]);
}

#[test]
fn revisions_going_backwards_in_real_time() {
    let history = [put(1, 0, 10, "x", "a", 5), put(2, 20, 30, "y", "b", 4)];
    let verdict = verdict(&history);
    let violation = verdict.violation().expect("a violation");
    assert_eq!((violation.partition.clone(), violation.ops.clone()), (Partition::Revisions, vec![0, 1]), "{verdict}");
}

#[test]
fn revisions_may_go_either_way_between_concurrent_writes() {
    let history = [put(1, 0, 30, "x", "a", 5), put(2, 20, 40, "y", "b", 4)];
    assert_linearizable(&history);
}

#[test]
fn two_writes_with_the_same_revision() {
    let history = [put(1, 0, 10, "x", "a", 2), put(2, 5, 15, "y", "b", 2)];
    let verdict = verdict(&history);
    let violation = verdict.violation().expect("a violation");
    assert_eq!(violation.ops, vec![0, 1], "{verdict}");
    assert!(violation.explanation.contains("share revision 2"), "{verdict}");
}

#[test]
fn a_write_revision_that_skips_back_on_its_own_key() {
    // Concurrent puts on one key: the later mod_revision must be the one the read sees.
    let history = [put(1, 0, 30, "x", "a", 3), put(2, 0, 30, "x", "b", 2), get(3, 40, 50, "x", Some(("b", 2, 2)), 3)];
    assert_violation(&history, &[2]);
}

#[test]
fn range_reads_one_snapshot() {
    let history = [
        put(1, 0, 10, "k1", "a", 2),
        put(1, 20, 30, "k2", "b", 3),
        range(2, 40, 50, "k0", "k9", &[("k1", "a", 2, 1), ("k2", "b", 3, 1)], 3),
        range(2, 60, 70, "k2", "k9", &[("k2", "b", 3, 1)], 3),
    ];
    assert_linearizable(&history);
}

#[test]
fn range_missing_a_key_written_at_or_below_its_revision() {
    // The header says revision 3, at which k1 exists: omitting it is a torn snapshot.
    let history = [
        put(1, 0, 10, "k1", "a", 2),
        put(2, 0, 10, "k2", "b", 3),
        range(3, 5, 50, "k0", "k9", &[("k2", "b", 3, 1)], 3),
    ];
    assert_violation(&history, &[2]);
}

#[test]
fn range_returning_keys_out_of_order_or_range() {
    let history = [put(1, 0, 10, "k1", "a", 2), range(2, 20, 30, "k2", "k9", &[("k1", "a", 2, 1)], 2)];
    let verdict = verdict(&history);
    assert_eq!(verdict.violation().map(|v| v.partition.clone()), Some(Partition::Response(1)), "{verdict}");
}

#[test]
fn delete_of_a_missing_key_does_not_take_a_revision() {
    let history = [delete(1, 0, 10, "x", 0, 1), put(1, 20, 30, "x", "a", 2), get(2, 40, 50, "x", Some(("a", 2, 1)), 2)];
    assert_linearizable(&history);
    let claims_change = [delete(1, 0, 10, "x", 1, 2)];
    assert_violation(&claims_change, &[0]);
}

#[test]
fn txn_that_took_the_wrong_branch() {
    // Version is 1, so `version == 2` fails; the store claims it held.
    let history = [put(1, 0, 10, "x", "a", 2), cas_version((1, 20, 30), "x", 2, "b", Some(TxnOutcome::Put), 3)];
    assert_violation(&history, &[1]);
    let failed = TxnOutcome::Got { kv: None };
    let wrong_get = [put(1, 0, 10, "x", "a", 2), cas_version((1, 20, 30), "x", 2, "b", Some(failed), 2)];
    assert_violation(&wrong_get, &[1]);
}

#[test]
fn a_checker_out_of_steps_says_unknown() {
    let history: Vec<_> = (0..20).map(|i| put(i, 0, 100, "x", &format!("v{i}"), i + 2)).collect();
    let limits = Limits { steps_max: 5, ..Limits::default() };
    let verdict = check(&history, limits).expect("well formed");
    assert!(matches!(verdict, Verdict::Unknown { steps: 5, .. }), "{verdict}");
}

#[test]
fn malformed_histories_are_refused() {
    let backwards = [put(1, 10, 5, "x", "a", 2)];
    assert!(check(&backwards, Limits::default()).is_err());
    let overlapping_client = [put(1, 0, 10, "x", "a", 2), put(1, 5, 15, "x", "b", 3)];
    assert!(check(&overlapping_client, Limits::default()).is_err());
    let too_long = [put(1, 0, 10, "x", "a", 2), put(1, 20, 30, "x", "b", 3)];
    assert!(check(&too_long, Limits { ops_len_max: 1, ..Limits::default() }).is_err());
}

fn txn_mod_greater(at: (u64, u64, u64), key: &str, than: u64, value: &str, revision: u64) -> haven_lincheck::Operation {
    use haven_lincheck::{Compare, CompareOp, CompareTarget, Input, Operation, Output, Response, TxnWrite};
    let compare = Compare { target: CompareTarget::ModRevision(than), op: CompareOp::Greater };
    let input = Input::Txn { key: b(key), compare, on_success: TxnWrite::Put { value: b(value) } };
    let output = Output::Txn { revision, outcome: TxnOutcome::Put };
    Operation { client: at.0, call_ns: at.1, input, response: Some(Response { return_ns: at.2, output }) }
}

#[test]
fn a_compare_on_the_unknown_revision_of_a_timed_out_write_may_hold() {
    // `mod_revision > 2` held, so the timed-out put took effect (at revision 3 or 4).
    let history = [
        put(1, 0, 10, "x", "a", 2),
        put_timeout(2, 20, "x", "b"),
        txn_mod_greater((3, 100, 110), "x", 2, "c", 5),
        get(3, 120, 130, "x", Some(("c", 5, 3)), 5),
    ];
    assert_linearizable(&history);
}

#[test]
fn a_compare_that_held_must_agree_with_the_versions_seen_later() {
    // Version 2 after the txn says the timed-out put never happened, so
    // `mod_revision > 2` could not have held.
    let history = [
        put(1, 0, 10, "x", "a", 2),
        put_timeout(2, 20, "x", "b"),
        txn_mod_greater((3, 100, 110), "x", 2, "c", 5),
        get(3, 120, 130, "x", Some(("c", 5, 2)), 5),
    ];
    assert_violation(&history, &[3]);
}

#[test]
fn a_timed_out_write_needs_a_free_revision() {
    // Revisions 2, 3 and 4 all belong to answered writes, so the timed-out put
    // of "b" cannot sit between "a" (2) and the read at 4 that sees version 2.
    let history = [
        put(1, 0, 10, "x", "a", 2),
        put_timeout(2, 15, "x", "b"),
        put(3, 20, 30, "y", "c", 3),
        put(3, 40, 50, "x", "d", 4),
        get(4, 60, 70, "x", Some(("d", 4, 3)), 4),
    ];
    assert_violation(&history, &[4]);
    let with_gap = [
        put(1, 0, 10, "x", "a", 2),
        put_timeout(2, 15, "x", "b"),
        put(3, 20, 30, "y", "c", 4),
        put(3, 40, 50, "x", "d", 5),
        get(4, 60, 70, "x", Some(("d", 5, 3)), 5),
    ];
    assert_linearizable(&with_gap);
}
