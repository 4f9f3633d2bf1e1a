//! Leases on a simulated 3-replica cluster, driven by hand: requests are
//! injected as if from a probe node (n4), which keeps every reply it gets.
//! Each test names the lease property it checks.

use crate::common;

use common::{TestNode, cluster, command, keep_alive, leader, ms, replica};
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::ReplyError;
use haven_store::{
    LeaseGrantRequest, LeaseId, LeaseTimeToLiveRequest, PutRequest, RangeRequest, Request, Response, StoreError,
};

const TTL_SECONDS: i64 = 2;

fn grant(sim: &mut Sim<TestNode>, seq: u64) -> LeaseId {
    let leader = leader(sim);
    match command(sim, leader, seq, Request::LeaseGrant(LeaseGrantRequest { ttl: TTL_SECONDS, id: 0 })) {
        Ok(Response::LeaseGrant(granted)) => granted.id,
        other => panic!("grant refused: {other:?}"),
    }
}

fn holds_lease(sim: &Sim<TestNode>, node: NodeId, lease: LeaseId) -> bool {
    let sm = replica(sim, node).and_then(|r| r.state_machine()).expect("a running replica");
    sm.store().lease_leases().leases.contains(&lease)
}

#[test]
fn keep_alives_are_answered_by_the_leader_only_with_the_full_ttl() {
    let mut sim = cluster(1);
    let lease = grant(&mut sim, 1);
    let leader = leader(&sim);
    let follower = (1..=3).map(NodeId).find(|&n| n != leader).expect("two followers");
    assert_eq!(
        keep_alive(&mut sim, follower, 1, lease),
        Err(ReplyError::NotLeader { leader_hint: Some(leader) }),
        "a follower has no lease clock"
    );
    assert_eq!(keep_alive(&mut sim, leader, 2, lease), Ok(TTL_SECONDS));
    assert_eq!(keep_alive(&mut sim, leader, 3, lease + 1), Err(ReplyError::Store(StoreError::LeaseNotFound)));
    let question = Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id: lease, keys: false });
    match command(&mut sim, leader, 2, question) {
        Ok(Response::LeaseTimeToLive(answer)) => {
            assert_eq!(answer.granted_ttl, TTL_SECONDS);
            assert!((0..TTL_SECONDS).contains(&answer.ttl), "remaining, not granted: {}", answer.ttl);
        }
        other => panic!("time-to-live refused: {other:?}"),
    }
}

#[test]
fn a_lease_not_kept_alive_is_revoked_through_the_log_with_its_keys() {
    let mut sim = cluster(2);
    let lease = grant(&mut sim, 1);
    let leader = leader(&sim);
    let put = Request::Put(PutRequest { key: b"held".to_vec(), value: b"v".to_vec(), lease, ..PutRequest::default() });
    assert!(command(&mut sim, leader, 2, put).is_ok());
    sim.run_for(ms(1_000));
    assert!((1..=3).all(|n| holds_lease(&sim, NodeId(n), lease)), "not yet expired 1.3 s after the grant");
    sim.run_for(ms(1_500));
    for node in (1..=3).map(NodeId) {
        assert!(!holds_lease(&sim, node, lease), "{node} still holds lease {lease} 2.8 s after its grant");
        let store = replica(&sim, node).and_then(|r| r.state_machine()).expect("running").store();
        let key = RangeRequest { key: b"held".to_vec(), ..RangeRequest::default() };
        assert_eq!(store.range(&key).expect("valid range").count, 0, "{node} kept the expired lease's key");
    }
    assert_eq!(keep_alive(&mut sim, leader, 1, lease), Err(ReplyError::Store(StoreError::LeaseNotFound)));
}

#[test]
fn a_leader_change_does_not_expire_a_lease_kept_alive() {
    let mut sim = cluster(3);
    let lease = grant(&mut sim, 1);
    let old = leader(&sim);
    sim.run_for(ms(1_000));
    assert_eq!(keep_alive(&mut sim, old, 1, lease), Ok(TTL_SECONDS));
    sim.crash(old);
    // The holder needs a while to find the new leader; by then its last
    // renewal (on the old leader) is 1.5 s old, and the new leader must
    // still count the lease alive: it gave it TTL + an election timeout.
    sim.run_for(ms(1_500));
    let new = leader(&sim);
    assert_ne!(new, old);
    assert!(holds_lease(&sim, new, lease), "the new leader expired a lease renewed 1.5 s ago");
    assert_eq!(keep_alive(&mut sim, new, 2, lease), Ok(TTL_SECONDS));
}
