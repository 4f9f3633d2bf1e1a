//! The checker on histories with lease expiries: deletions no client called,
//! recorded with their known output (keys and revision) and the widest
//! window (called at 0, returned at the end of the run). The revision alone
//! must place them. Revisions start at 1, so the first change gets 2.

use crate::support;

use haven_lincheck::{HistoryError, Input, Limits, Output, check};
use support::*;

/// The end of every history here: an expiry's window runs to it.
const END: u64 = 1_000;

/// A holder puts `l/k0` at revision 2; the store expires it at revision 3.
fn put_then_expired() -> Vec<haven_lincheck::Operation> {
    vec![put(1, 10, 20, "l/k0", "a", 2), expire(0, END, &["l/k0"], 3)]
}

#[test]
fn a_read_after_the_expiry_revision_that_still_sees_the_key_is_a_violation() {
    let mut history = put_then_expired();
    history.push(get(1, 30, 40, "l/k0", Some(("a", 2, 1)), 3));
    let text = assert_violation(&history, &[1, 2]);
    assert!(text.contains("the store, expire \"l/k0\""), "{text}");
    // Another key's change moving the header further does not help.
    let mut history = put_then_expired();
    history.push(put(2, 25, 28, "l/k1", "b", 4));
    history.push(get(1, 30, 40, "l/k0", Some(("a", 2, 1)), 4));
    assert_violation(&history, &[1, 3]);
}

#[test]
fn a_read_after_the_expiry_revision_that_sees_nothing_is_linearizable() {
    let mut history = put_then_expired();
    history.push(get(1, 30, 40, "l/k0", None, 3));
    assert_linearizable(&history);
}

#[test]
fn a_read_before_the_expiry_revision_may_still_see_the_key() {
    // Nothing tells when the expiry happened but its revision: a read at
    // revision 2, even one called late, sees the key as the put left it.
    let mut history = put_then_expired();
    history.push(get(1, 500, 510, "l/k0", Some(("a", 2, 1)), 2));
    assert_linearizable(&history);
}

#[test]
fn a_put_with_prev_kv_after_the_expiry_that_sees_the_old_value_is_a_violation() {
    let mut history = put_then_expired();
    history.push(put_prev((1, 30, 40), "l/k0", "b", Some(("a", 2, 1)), 4));
    assert_violation(&history, &[1, 2]);
    let mut history = put_then_expired();
    history.push(put_prev((1, 30, 40), "l/k0", "b", None, 4));
    history.push(get(1, 50, 60, "l/k0", Some(("b", 4, 1)), 4));
    assert_linearizable(&history);
}

#[test]
fn a_version_that_survives_the_expiry_is_a_violation() {
    // The key was recreated after the expiry, so its version restarts at 1.
    let mut history = put_then_expired();
    history.push(put(1, 30, 40, "l/k0", "b", 4));
    history.push(get(1, 50, 60, "l/k0", Some(("b", 4, 2)), 4));
    assert_violation(&history, &[3]);
}

#[test]
fn the_keys_of_one_expiry_share_its_revision() {
    let history = [
        put(1, 10, 20, "l/k0", "a", 2),
        put(1, 30, 40, "l/k1", "b", 3),
        expire(0, END, &["l/k0", "l/k1"], 4),
        get(1, 50, 60, "l/k0", None, 4),
        get(1, 70, 80, "l/k1", None, 4),
    ];
    assert_linearizable(&history);
}

#[test]
fn an_expiry_of_a_key_that_does_not_exist_at_its_revision_is_a_violation() {
    // The expiry claims revision 2, before the only put of the key.
    let history = [put(1, 10, 20, "l/k0", "a", 3), expire(0, END, &["l/k0"], 2)];
    assert_violation(&history, &[1]);
    // Or the key was already gone.
    let history = [put(1, 10, 20, "l/k0", "a", 2), expire(0, END, &["l/k0"], 3), expire(0, END, &["l/k0"], 4)];
    assert_violation(&history, &[]);
}

#[test]
fn an_expiry_may_not_share_a_revision_with_a_client_change() {
    let history = [put(1, 10, 20, "l/k0", "a", 2), put(1, 30, 40, "l/k1", "b", 3), expire(0, END, &["l/k0"], 3)];
    assert_violation(&history, &[1, 2]);
}

#[test]
fn expiries_keep_no_client_busy_but_must_delete_exactly_their_keys() {
    // Every expiry has client 0 and overlaps client 0's calls: that is fine.
    let mut history = put_then_expired();
    history.push(expire(0, END, &["l/k9"], 5));
    history.push(put(0, 30, 40, "l/k9", "c", 4));
    assert_linearizable(&history);
    let mut miscounted = put_then_expired();
    miscounted[1].response.as_mut().expect("answered").output = Output::Delete { revision: 3, deleted: 2 };
    assert!(matches!(check(&miscounted, Limits::default()), Err(HistoryError::Expiry { op: 1, .. })));
    let mut twice = put_then_expired();
    twice[1] = expire(0, END, &["l/k0", "l/k0"], 3);
    assert!(matches!(check(&twice, Limits::default()), Err(HistoryError::Expiry { op: 1, .. })));
    let mut answered_by_a_get = put_then_expired();
    answered_by_a_get[1].response.as_mut().expect("answered").output = Output::Get { revision: 3, kv: None };
    assert!(matches!(check(&answered_by_a_get, Limits::default()), Err(HistoryError::OutputKind { op: 1, .. })));
}

#[test]
fn an_unanswered_expiry_may_or_may_not_have_happened() {
    let mut history = put_then_expired();
    history[1].response = None;
    assert!(matches!(history[1].input, Input::Expire { .. }));
    let mut gone = history.clone();
    gone.push(get(1, 30, 40, "l/k0", None, 3));
    assert_linearizable(&gone);
    history.push(get(1, 30, 40, "l/k0", Some(("a", 2, 1)), 3));
    assert_linearizable(&history);
}
