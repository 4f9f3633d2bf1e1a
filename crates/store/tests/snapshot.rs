//! Snapshot and restore: the same store back, or a typed error, never a panic.

use crate::common;
use common::*;
use haven_runtime::record::RecordError;
use haven_store::*;
use proptest::prelude::*;

fn busy_store() -> Store {
    let mut s = store();
    grant(&mut s, 7, 30);
    put(&mut s, "a", "1");
    put_with(&mut s, PutRequest { lease: 7, ..put_req("b", "1") });
    put(&mut s, "a", "2");
    delete(&mut s, delete_req("a", ""));
    put(&mut s, "c", "1");
    s.apply(&Request::Compact(CompactionRequest { revision: 4, physical: false })).unwrap();
    put(&mut s, "a", "3");
    s
}

#[test]
fn restore_gives_back_the_same_store() {
    let s = busy_store();
    let restored = Store::restore(&s.snapshot().unwrap(), StoreConfig::default()).unwrap();
    assert_eq!(restored, s);
    assert_eq!(restored.bytes_used(), s.bytes_used(), "quota accounting is rebuilt");
    let all = KeyRange::new(b"\0", b"\0");
    assert_eq!(restored.events_since(4, &all, 100), s.events_since(4, &all, 100));
}

#[test]
fn damaged_snapshots_are_refused_with_typed_errors() {
    let bytes = busy_store().snapshot().unwrap();
    let cfg = StoreConfig::default;
    assert_eq!(
        Store::restore(&bytes[..bytes.len() - 1], cfg()),
        Err(SnapshotError::Truncated { len: bytes.len() - 1 })
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Store::restore(&longer, cfg()), Err(SnapshotError::Trailing(1)));
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert!(matches!(Store::restore(&flipped, cfg()), Err(SnapshotError::Record(RecordError::Checksum { .. }))));
    let mut other_version = bytes.clone();
    other_version[0] = SNAPSHOT_VERSION + 1;
    assert!(matches!(
        Store::restore(&other_version, cfg()),
        Err(SnapshotError::Record(RecordError::UnknownVersion { .. }))
    ));
}

#[test]
fn a_well_framed_but_impossible_snapshot_is_refused() {
    // A checksum only proves the bytes are the ones written; this payload is
    // valid postcard for the image type, but holds a key whose only version
    // is a tombstone, which the store can never produce.
    let s = busy_store();
    let bytes = s.snapshot().unwrap();
    let payload = &bytes[haven_runtime::record::HEADER_BYTES..];
    let mut found = false;
    // Flip every byte in turn and re-frame: whatever decodes must validate or be refused.
    for i in 0..payload.len() {
        for delta in [1u8, 0x80] {
            let mut p = payload.to_vec();
            p[i] = p[i].wrapping_add(delta);
            let mut framed = Vec::new();
            haven_runtime::record::encode(SNAPSHOT_VERSION, &p, &mut framed);
            match Store::restore(&framed, StoreConfig::default()) {
                Err(SnapshotError::Invalid(_)) => found = true,
                Err(_) => {}
                Ok(restored) => check_consistent(&restored),
            }
        }
    }
    assert!(found, "some single-byte change must decode yet describe an impossible store");
}

/// A restored store must answer everything without panicking.
fn check_consistent(s: &Store) {
    let all = KeyRange::new(b"\0", b"\0");
    let from = s.compact_revision().unwrap_or(1);
    let _ = s.events_since(from, &all, usize::MAX);
    for rev in from..=s.revision() {
        let _ = s.range(&RangeRequest { revision: rev, ..range_req("\0", "\0") });
    }
    let mut copy = s.clone();
    let ids: Vec<LeaseId> = copy.lease_leases().leases;
    for id in ids {
        copy.apply(&Request::LeaseRevoke(LeaseRevokeRequest { id })).unwrap();
    }
    copy.apply(&Request::DeleteRange(delete_req("\0", "\0"))).unwrap();
    let now = copy.revision();
    copy.apply(&Request::Compact(CompactionRequest { revision: now, physical: false })).unwrap();
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_restore(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Store::restore(&bytes, StoreConfig::default());
    }

    #[test]
    fn arbitrary_framed_payloads_never_panic_restore(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut framed = Vec::new();
        haven_runtime::record::encode(SNAPSHOT_VERSION, &payload, &mut framed);
        if let Ok(s) = Store::restore(&framed, StoreConfig::default()) {
            check_consistent(&s);
        }
    }
}
