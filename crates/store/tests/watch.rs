//! Watch history: every event from a revision on, in order, no gaps or
//! duplicates, until compaction.

use crate::common;
use common::*;
use haven_store::*;

fn all() -> KeyRange {
    KeyRange::new(b"\0", b"\0")
}

/// (kind, key, mod_revision) of each event, for compact assertions.
fn summary(events: &[Event]) -> Vec<(EventKind, String, u64)> {
    events.iter().map(|e| (e.kind, String::from_utf8_lossy(&e.kv.key).into_owned(), e.kv.mod_revision)).collect()
}

#[test]
fn watch_from_an_old_revision_returns_every_event_in_order() {
    let mut s = store();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "b", "1"); // 3
    put(&mut s, "a", "2"); // 4
    delete(&mut s, delete_req("a", "c")); // 5: a, b
    let events = s.events_since(3, &all(), 100).unwrap();
    use EventKind::*;
    assert_eq!(
        summary(&events),
        [(Put, "b".into(), 3), (Put, "a".into(), 4), (Delete, "a".into(), 5), (Delete, "b".into(), 5)]
    );
    assert_eq!(events[1].prev_kv.as_ref().unwrap().value, b"1", "prev_kv of an overwrite");
    assert_eq!(events[2].prev_kv.as_ref().unwrap().value, b"2", "prev_kv of a delete");
    assert_eq!(events[2].kv.version, 0, "a delete event carries only key and revision");
    assert!(events[0].prev_kv.is_none(), "a create has no prev_kv");
}

#[test]
fn events_since_filters_by_key_range_and_stops_between_revisions() {
    let mut s = store();
    let both = TxnRequest {
        success: vec![RequestOp::Put(put_req("x1", "v")), RequestOp::Put(put_req("x2", "v"))],
        ..TxnRequest::default()
    };
    txn(&mut s, both).unwrap(); // 2
    put(&mut s, "y", "v"); // 3
    put(&mut s, "x3", "v"); // 4
    let xs = KeyRange::prefix(b"x");
    assert_eq!(summary(&s.events_since(0, &xs, 100).unwrap()).len(), 3);
    let first = s.events_since(0, &xs, 1).unwrap();
    assert_eq!(first.len(), 2, "a revision is never split: both puts of revision 2");
    let rest = s.events_since(first.last().unwrap().kv.mod_revision + 1, &xs, 1).unwrap();
    assert_eq!(summary(&rest), [(EventKind::Put, "x3".into(), 4)]);
}

#[test]
fn history_below_the_compaction_point_is_gone_for_watchers() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    put(&mut s, "a", "3");
    s.apply(&Request::Compact(CompactionRequest { revision: 3, physical: false })).unwrap();
    assert_eq!(s.events_since(2, &all(), 10), Err(Compacted { compact_revision: 3 }));
    let from_point = s.events_since(3, &all(), 10).unwrap();
    assert_eq!(summary(&from_point).iter().map(|e| e.2).collect::<Vec<_>>(), [3, 4]);
    assert!(from_point[0].prev_kv.is_none(), "as in etcd: prev_kv is read at revision 2, compacted");
    assert_eq!(from_point[1].prev_kv.as_ref().unwrap().value, b"2");
}

#[test]
fn hub_hands_out_bounded_batches_that_never_split_a_revision() {
    let mut s = store();
    for i in 0..5 {
        put(&mut s, &format!("k{i}"), "v"); // 2..=6
    }
    let mut hub = WatchHub::new(WatchConfig { batch_events_len_max: 2, ..WatchConfig::default() });
    let id = hub
        .watch(
            &s,
            &WatchRequest {
                key: b"k".to_vec(),
                range_end: prefix_end(b"k"),
                start_revision: 2,
                ..WatchRequest::default()
            },
        )
        .unwrap();
    delete(&mut s, delete_req("k", &String::from_utf8(prefix_end(b"k")).unwrap())); // 7: five deletes
    let mut seen = Vec::new();
    let mut batches = Vec::new();
    while hub.is_behind(&s) {
        for update in hub.poll(&s) {
            let WatchUpdate::Events { watch_id, events } = update else { panic!("{update:?}") };
            assert_eq!(watch_id, id);
            batches.push(events.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>());
            seen.extend(summary(&events));
        }
    }
    // etcd never splits a revision between watch responses: a client sees a
    // txn or a range delete whole. The bound is met at the next boundary.
    assert_eq!(batches, vec![vec![2, 3], vec![4, 5], vec![6, 7, 7, 7, 7, 7]]);
    let mut expected: Vec<_> = (0..5).map(|i| (EventKind::Put, format!("k{i}"), 2 + i)).collect();
    expected.extend((0..5).map(|i| (EventKind::Delete, format!("k{i}"), 7)));
    assert_eq!(seen, expected);
    put(&mut s, "k9", "v");
    assert_eq!(hub.poll(&s).len(), 1, "a caught-up watcher gets the next write");
    assert!(hub.poll(&s).is_empty(), "and nothing twice");
}

#[test]
fn hub_filters_and_drops_prev_kv_unless_asked() {
    let mut s = store();
    let mut hub = WatchHub::new(WatchConfig::default());
    let no_put = hub.watch(&s, &WatchRequest { key: b"a".to_vec(), no_put: true, ..WatchRequest::default() }).unwrap();
    let with_prev =
        hub.watch(&s, &WatchRequest { key: b"a".to_vec(), prev_kv: true, ..WatchRequest::default() }).unwrap();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    delete(&mut s, delete_req("a", ""));
    let updates = hub.poll(&s);
    let events_of = |id| {
        updates.iter().find_map(|u| match u {
            WatchUpdate::Events { watch_id, events } if *watch_id == id => Some(events.clone()),
            _ => None,
        })
    };
    assert_eq!(summary(&events_of(no_put).unwrap()), [(EventKind::Delete, "a".into(), 4)]);
    let all = events_of(with_prev).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].prev_kv.as_ref().map(|kv| kv.value.clone()), Some(b"1".to_vec()));
}

#[test]
fn hub_cancels_a_watcher_whose_start_was_compacted() {
    let mut s = store();
    put(&mut s, "a", "1");
    put(&mut s, "a", "2");
    let mut hub = WatchHub::new(WatchConfig::default());
    let id = hub.watch(&s, &WatchRequest { key: b"a".to_vec(), start_revision: 2, ..WatchRequest::default() }).unwrap();
    s.apply(&Request::Compact(CompactionRequest { revision: 3, physical: false })).unwrap();
    assert_eq!(hub.poll(&s), [WatchUpdate::Compacted { watch_id: id, compact_revision: 3 }]);
    assert!(hub.is_empty());
}

#[test]
fn hub_bounds_the_number_of_watchers() {
    let s = store();
    let mut hub = WatchHub::new(WatchConfig { watchers_len_max: 1, ..WatchConfig::default() });
    hub.watch(&s, &WatchRequest::default()).unwrap();
    assert_eq!(hub.watch(&s, &WatchRequest::default()), Err(WatchError::TooManyWatchers { watchers_len_max: 1 }));
}
