//! Leases in the replicated store: grant, attach, detach, revoke, time-to-live.

use crate::common;
use common::*;
use haven_store::*;

fn revoke(s: &mut Store, id: LeaseId) -> Result<Response, StoreError> {
    s.apply(&Request::LeaseRevoke(LeaseRevokeRequest { id }))
}

fn ttl_of(s: &Store, id: LeaseId) -> LeaseTimeToLiveResponse {
    s.lease_time_to_live(&LeaseTimeToLiveRequest { id, keys: true })
}

#[test]
fn grant_raises_short_ttls_to_the_minimum_and_refuses_huge_ones() {
    let mut s = store();
    let g = grant(&mut s, 5, 1);
    assert_eq!((g.id, g.ttl), (5, 2), "etcd's minimum TTL is 2 s with its default election timeout");
    assert_eq!((grant(&mut s, 6, 30).ttl, s.revision()), (30, 1), "a grant does not change the revision");
    let huge = s.apply(&Request::LeaseGrant(LeaseGrantRequest { ttl: 9_000_000_001, id: 7 }));
    assert_eq!(huge, Err(StoreError::LeaseTtlTooLarge));
    assert_eq!(s.apply(&Request::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 5 })), Err(StoreError::LeaseExists));
}

#[test]
fn store_chosen_ids_are_distinct_and_listed() {
    let mut s = store();
    let a = grant(&mut s, 0, 10).id;
    let b = grant(&mut s, 0, 10).id;
    assert!(a > 0 && b > 0 && a != b);
    assert_eq!(s.lease_leases().leases, [a.min(b), a.max(b)]);
}

#[test]
fn put_with_lease_attaches_and_put_without_detaches() {
    let mut s = store();
    grant(&mut s, 1, 10);
    put_with(&mut s, PutRequest { lease: 1, ..put_req("a", "1") });
    put_with(&mut s, PutRequest { lease: 1, ..put_req("b", "1") });
    assert_eq!(get(&s, "a").unwrap().lease, 1);
    assert_eq!(ttl_of(&s, 1).keys, [b"a".to_vec(), b"b".to_vec()]);
    put(&mut s, "a", "2");
    assert_eq!((get(&s, "a").unwrap().lease, ttl_of(&s, 1).keys), (0, vec![b"b".to_vec()]));
    put_with(&mut s, PutRequest { ignore_lease: true, ..put_req("b", "3") });
    assert_eq!(get(&s, "b").unwrap().lease, 1, "ignore_lease keeps the lease");
}

#[test]
fn put_with_a_missing_lease_is_refused() {
    let mut s = store();
    let r = s.apply(&Request::Put(PutRequest { lease: 42, ..put_req("a", "1") }));
    assert_eq!((r, s.revision()), (Err(StoreError::LeaseNotFound), 1));
}

#[test]
fn revoke_deletes_every_attached_key_in_one_revision() {
    let mut s = store();
    grant(&mut s, 1, 10);
    for k in ["c", "a", "b"] {
        put_with(&mut s, PutRequest { lease: 1, ..put_req(k, "v") });
    }
    put(&mut s, "free", "v");
    let before = s.revision();
    let Ok(Response::LeaseRevoke(r)) = revoke(&mut s, 1) else { panic!() };
    assert_eq!((r.header.revision, s.revision()), (before + 1, before + 1));
    assert_eq!(keys_of(&range(&s, range_req("\0", "\0")).kvs), ["free"]);
    let events = s.events_since(before + 1, &KeyRange::new(b"\0", b"\0"), 100).unwrap();
    assert_eq!(keys_of(&events.iter().map(|e| e.kv.clone()).collect::<Vec<_>>()), ["a", "b", "c"], "key order");
    assert!(events.iter().all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == before + 1));
    assert_eq!(ttl_of(&s, 1).ttl, -1, "gone: etcd answers TTL -1 without an error");
    assert_eq!(revoke(&mut s, 1), Err(StoreError::LeaseNotFound));
}

#[test]
fn revoking_a_lease_without_keys_keeps_the_revision() {
    let mut s = store();
    grant(&mut s, 1, 10);
    revoke(&mut s, 1).unwrap();
    assert_eq!(s.revision(), 1);
}

#[test]
fn deleting_a_key_detaches_it_so_revoke_later_does_not_touch_its_new_incarnation() {
    let mut s = store();
    grant(&mut s, 1, 10);
    put_with(&mut s, PutRequest { lease: 1, ..put_req("a", "1") });
    delete(&mut s, delete_req("a", ""));
    put(&mut s, "a", "2");
    revoke(&mut s, 1).unwrap();
    assert_eq!(get(&s, "a").unwrap().value, b"2");
}

#[test]
fn time_to_live_reports_granted_ttl_and_keys_on_request() {
    let mut s = store();
    grant(&mut s, 9, 60);
    put_with(&mut s, PutRequest { lease: 9, ..put_req("k", "v") });
    let r = ttl_of(&s, 9);
    assert_eq!((r.id, r.granted_ttl, r.keys.len()), (9, 60, 1));
    let no_keys = s.lease_time_to_live(&LeaseTimeToLiveRequest { id: 9, keys: false });
    assert!(no_keys.keys.is_empty());
}

#[test]
fn lessor_expiry_flows_through_revoke_and_survives_a_leader_change() {
    use haven_runtime::Instant;
    use std::time::Duration;
    let secs = |s: u64| Instant::from_nanos(s * 1_000_000_000);
    let mut s = store();
    let mut leader = Lessor::new(LessorConfig::default());
    leader.promote(secs(0), Duration::from_secs(1));
    let g = grant(&mut s, 0, 5);
    leader.granted(g.id, Duration::from_secs(g.ttl as u64), secs(0));
    put_with(&mut s, PutRequest { lease: g.id, ..put_req("held", "v") });
    leader.renew(g.id, secs(4)).unwrap();
    // A new leader rebuilt from the store, promoted at its own clock's 100 s.
    let mut next = Lessor::new(LessorConfig::default());
    next.reset(s.lease_ttls());
    next.promote(secs(100), Duration::from_secs(1));
    assert!(next.expired(secs(105)).is_empty(), "TTL 5 s + 1 s extension from promotion");
    let expired = next.expired(secs(106));
    assert_eq!(expired, [g.id]);
    for id in expired {
        revoke(&mut s, id).unwrap();
        next.revoked(id);
    }
    assert_eq!(get(&s, "held"), None);
}

fn grant_ms(s: &mut Store, id: LeaseId, ttl_ms: u64) -> LeaseGrantMsResponse {
    match s.apply(&Request::LeaseGrantMs(LeaseGrantMsRequest { ttl_ms, id })) {
        Ok(Response::LeaseGrantMs(g)) => g,
        other => panic!("grant of {ttl_ms} ms: {other:?}"),
    }
}

#[test]
fn a_grant_in_milliseconds_keeps_them_and_reports_whole_seconds_rounded_up() {
    let mut s = Store::new(StoreConfig { lease_ttl_ms_min: 300, ..StoreConfig::default() });
    assert_eq!(grant_ms(&mut s, 0, 100).ttl_ms, 300, "raised to the minimum");
    let g = grant_ms(&mut s, 9, 800);
    assert_eq!((g.id, g.ttl_ms), (9, 800));
    let r = ttl_of(&s, 9);
    assert_eq!((r.ttl, r.granted_ttl), (1, 1), "etcd's API counts seconds: never 0 for a live lease");
    let ttls: Vec<_> = s.lease_ttls().collect();
    assert_eq!(ttls[1], (9, std::time::Duration::from_millis(800)), "{ttls:?}");
}

#[test]
fn milliseconds_survive_a_snapshot_and_leave_with_their_lease() {
    use std::time::Duration;
    let mut s = store();
    grant(&mut s, 1, 5);
    let plain = s.snapshot().unwrap();
    grant_ms(&mut s, 2, 2_500);
    let restored = Store::restore(&s.snapshot().unwrap(), StoreConfig::default()).unwrap();
    let ttls: Vec<_> = restored.lease_ttls().collect();
    assert_eq!(ttls, [(1, Duration::from_secs(5)), (2, Duration::from_millis(2_500))]);
    revoke(&mut s, 2).unwrap();
    assert_eq!(s.snapshot().unwrap(), plain, "without such leases, the bytes of a snapshot from before them");
}
