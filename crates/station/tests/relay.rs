//! Requests a follower relays to its leader over the replica links, on a
//! simulated 3-replica cluster: the probe (n4) plays the daemon's local
//! client and sends `StationMsg::Relay` to one replica.

use crate::common;

use common::{PROBE, TestNode, ask, cluster, command, inbox, leader, ms, replica};
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::{ClientRequest, KeepAliveRequest, Relayed, ReplyError, StationMsg};
use haven_store::{LeaseGrantRequest, PutRequest, RangeRequest, Request, Response};

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put(PutRequest { key: key.to_vec(), value: value.to_vec(), ..PutRequest::default() })
}

fn relay(seq: u64, request: Request) -> StationMsg {
    StationMsg::Relay(Relayed::Request(ClientRequest { client: 7, seq, request }))
}

fn follower_of(sim: &Sim<TestNode>) -> NodeId {
    let leader = leader(sim);
    (1..=3).map(NodeId).find(|&n| n != leader).expect("two followers")
}

fn version_at(sim: &mut Sim<TestNode>, at: NodeId, seq: u64, key: &[u8]) -> u64 {
    let range = Request::Range(RangeRequest { key: key.to_vec(), ..RangeRequest::default() });
    match command(sim, at, seq, range) {
        Ok(Response::Range(found)) => found.kvs.first().map_or(0, |kv| kv.version),
        other => panic!("range refused: {other:?}"),
    }
}

#[test]
fn a_write_relayed_by_a_follower_is_applied_once_and_answered_through_it() {
    let mut sim = cluster(11);
    let follower = follower_of(&sim);
    let StationMsg::Reply(first) = ask(&mut sim, follower, relay(1, put(b"k", b"v"))) else { panic!("a reply") };
    assert_eq!((first.client, first.seq), (7, 1));
    let Ok(Response::Put(_)) = first.result else { panic!("the put was refused: {first:?}") };
    // The same command again (a client's retry): answered, not applied twice.
    let StationMsg::Reply(retry) = ask(&mut sim, follower, relay(1, put(b"k", b"v"))) else { panic!("a reply") };
    assert_eq!(retry.result, first.result, "the retry gets the first answer");
    let leader = leader(&sim);
    assert_eq!(version_at(&mut sim, leader, 1, b"k"), 1, "applied exactly once");
}

#[test]
fn a_leader_serves_a_relay_itself_and_a_follower_relays_keep_alives() {
    let mut sim = cluster(12);
    let leader = leader(&sim);
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: 5, id: 0 });
    let StationMsg::Reply(granted) = ask(&mut sim, leader, relay(1, grant)) else { panic!("a reply") };
    let Ok(Response::LeaseGrant(granted)) = granted.result else { panic!("grant refused: {granted:?}") };

    let follower = follower_of(&sim);
    let keep = KeepAliveRequest { client: 7, seq: 2, lease: granted.id };
    let StationMsg::KeepAliveReply(kept) = ask(&mut sim, follower, StationMsg::Relay(Relayed::KeepAlive(keep))) else {
        panic!("a keep-alive reply")
    };
    assert_eq!(kept.result, Ok(5), "renewed by the leader for the full TTL");
}

#[test]
fn requests_relayed_to_a_lost_leader_are_refused_naming_the_new_one() {
    let mut sim = cluster(13);
    let (old, follower) = (leader(&sim), follower_of(&sim));
    sim.crash(old);
    // The follower still believes in `old`: it relays, and no answer can come.
    sim.inject(follower, PROBE, relay(1, put(b"k", b"v")));
    sim.run_for(ms(3_000));
    let new = leader(&sim);
    assert_ne!(new, old);
    let answers: Vec<&StationMsg> = inbox(&sim, 4).iter().collect();
    let [StationMsg::Reply(refused)] = answers.as_slice() else { panic!("one answer, got {answers:?}") };
    assert_eq!(refused.seq, 1);
    // Answered as soon as the follower stopped following `old` (it may not
    // know the new leader yet), so the client retries at once.
    // It may have been proposed there: "leader lost", never "not leader".
    assert!(matches!(refused.result, Err(ReplyError::LeaderLost { leader_hint }) if leader_hint != Some(old)));
    // The retry, relayed to the new leader, succeeds.
    let StationMsg::Reply(retry) = ask(&mut sim, follower, relay(1, put(b"k", b"v"))) else { panic!("a reply") };
    assert!(retry.result.is_ok(), "{retry:?}");
}

#[test]
fn a_follower_has_applied_the_write_it_relayed_when_it_passes_the_answer_on() {
    // The leader's answer says how far it committed. Without that, the
    // follower would learn the commit after its own fsync (0.5 to 2 ms on
    // the simulated disk) and the leader's next append, and the daemon
    // would hold the client's answer until then.
    let mut sim = cluster(14);
    let follower = follower_of(&sim);
    for seq in 1..=20 {
        let (before, deadline) = (inbox(&sim, 4).len(), sim.now() + ms(300));
        sim.inject(follower, PROBE, relay(seq, put(b"k", b"v")));
        while inbox(&sim, 4).len() == before {
            assert!(sim.now() < deadline && sim.step(), "{follower} did not answer write {seq} within 300 ms");
        }
        let StationMsg::Reply(reply) = &inbox(&sim, 4)[before] else { panic!("a reply") };
        let Ok(Response::Put(put)) = &reply.result else { panic!("the put was refused: {reply:?}") };
        let state = replica(&sim, follower).and_then(|r| r.state_machine()).expect("the follower runs");
        assert_eq!(state.store().revision(), put.header.revision, "write {seq} applied on {follower}");
        sim.run_for(ms(10));
    }
}
