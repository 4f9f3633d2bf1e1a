//! The end-of-run checks that tie the clients' history, the stations'
//! event history and the final state together (test support).
//!
//! In: the recorded operations, a reference event history (a watch from
//! revision 1), the final range of the prefix. Out: the first way they
//! disagree: an acknowledged change missing from the history (or there at
//! another revision or with another value), or a final state that is not
//! what the history leads to.

use super::watcher::Seen;
use haven_lincheck as lin;
use std::collections::BTreeMap;

/// Every acknowledged put, delete and txn write is in `reference` at the
/// revision its answer named, with its value; returns how many were checked.
pub fn acknowledged_writes_in_history(history: &[lin::Operation], reference: &[Seen]) -> Result<usize, String> {
    let by_change: BTreeMap<(u64, &[u8]), &Seen> =
        reference.iter().map(|s| ((s.revision, s.key.as_slice()), s)).collect();
    let mut checked = 0;
    for (i, op) in history.iter().enumerate() {
        let Some(response) = &op.response else { continue };
        let Some(expected) = acknowledged_change(&op.input, &response.output) else { continue };
        let found = by_change.get(&(expected.revision, expected.key.as_slice()));
        if found != Some(&&expected) {
            return Err(format!(
                "op #{i} of client {} was acknowledged as {expected}, the history has {}",
                op.client,
                found.map_or_else(|| "nothing there".to_owned(), ToString::to_string)
            ));
        }
        checked += 1;
    }
    Ok(checked)
}

/// The change an acknowledged operation made, if it made one.
fn acknowledged_change(input: &lin::Input, output: &lin::Output) -> Option<Seen> {
    let change = |revision: u64, key: &[u8], value: Option<&[u8]>| Seen {
        revision,
        key: key.to_vec(),
        delete: value.is_none(),
        value: value.unwrap_or_default().to_vec(),
    };
    match (input, output) {
        (lin::Input::Put { key, value, .. }, lin::Output::Put { revision, .. }) => {
            Some(change(*revision, key, Some(value)))
        }
        (lin::Input::Delete { key }, lin::Output::Delete { revision, deleted: 1 }) => {
            Some(change(*revision, key, None))
        }
        (lin::Input::Txn { key, on_success, .. }, lin::Output::Txn { revision, outcome }) => {
            match (on_success, outcome) {
                (lin::TxnWrite::Put { value }, lin::TxnOutcome::Put) => Some(change(*revision, key, Some(value))),
                (lin::TxnWrite::Delete, lin::TxnOutcome::Deleted { deleted: 1 }) => Some(change(*revision, key, None)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The final range (key, value, mod_revision) is what replaying `reference` gives.
pub fn final_state_matches(reference: &[Seen], final_kvs: &[lin::KeyValue]) -> Result<(), String> {
    let mut replayed: BTreeMap<&[u8], (&[u8], u64)> = BTreeMap::new();
    for seen in reference {
        if seen.delete {
            replayed.remove(seen.key.as_slice());
        } else {
            replayed.insert(&seen.key, (&seen.value, seen.revision));
        }
    }
    let read: BTreeMap<&[u8], (&[u8], u64)> =
        final_kvs.iter().map(|kv| (kv.key.as_slice(), (kv.value.as_slice(), kv.mod_revision))).collect();
    if replayed == read {
        return Ok(());
    }
    let differs = replayed.keys().chain(read.keys()).find(|k| replayed.get(*k) != read.get(*k)).expect("they differ");
    Err(format!(
        "key {}: the final read has {:?}, replaying the history gives {:?}",
        String::from_utf8_lossy(differs),
        read.get(differs).map(|(v, r)| (String::from_utf8_lossy(v), r)),
        replayed.get(differs).map(|(v, r)| (String::from_utf8_lossy(v), r)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_op(key: &str, value: &str, revision: u64) -> lin::Operation {
        let input = lin::Input::Put { key: key.into(), value: value.into(), prev_kv: false };
        let output = lin::Output::Put { revision, prev: None };
        lin::Operation { client: 1, call_ns: 0, input, response: Some(lin::Response { return_ns: 1, output }) }
    }

    fn seen(revision: u64, key: &str, value: Option<&str>) -> Seen {
        Seen { revision, key: key.into(), delete: value.is_none(), value: value.unwrap_or_default().into() }
    }

    #[test]
    fn an_acknowledged_put_must_be_in_the_history_as_answered() {
        let history = [put_op("a", "1", 2)];
        assert_eq!(acknowledged_writes_in_history(&history, &[seen(2, "a", Some("1"))]), Ok(1));
        assert!(acknowledged_writes_in_history(&history, &[]).is_err(), "missing");
        assert!(acknowledged_writes_in_history(&history, &[seen(3, "a", Some("1"))]).is_err(), "other revision");
        assert!(acknowledged_writes_in_history(&history, &[seen(2, "a", Some("2"))]).is_err(), "other value");
        let mut unanswered = put_op("a", "1", 2);
        unanswered.response = None;
        assert_eq!(acknowledged_writes_in_history(&[unanswered], &[]), Ok(0), "unknown outcomes are not required");
    }

    #[test]
    fn the_final_state_is_the_replayed_history() {
        let history = [seen(1, "a", Some("1")), seen(2, "b", Some("2")), seen(3, "a", None)];
        let b = lin::KeyValue { key: b"b".to_vec(), value: b"2".to_vec(), mod_revision: 2, version: 1 };
        assert_eq!(final_state_matches(&history, std::slice::from_ref(&b)), Ok(()));
        assert!(final_state_matches(&history, &[]).is_err(), "b lost");
        let a = lin::KeyValue { key: b"a".to_vec(), value: b"1".to_vec(), mod_revision: 1, version: 1 };
        assert!(final_state_matches(&history, &[a, b]).is_err(), "a resurrected");
    }
}
