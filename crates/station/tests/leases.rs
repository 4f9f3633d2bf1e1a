//! Leases on a simulated 3-replica cluster, driven by hand: requests are
//! injected as if from a probe node (n4), which keeps every reply it gets.
//! Each test names the lease property it checks.

use haven_raft::Role;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_sim::{Sim, SimConfig};
use haven_station::{
    ClientRequest, KeepAliveReply, KeepAliveRequest, Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer,
    ReplyError, StationMsg,
};
use haven_store::{
    LeaseGrantRequest, LeaseId, LeaseTimeToLiveRequest, PutRequest, RangeRequest, Request, Response, StoreError,
};
use std::time::Duration;

const PROBE: NodeId = NodeId(4);
const TTL_SECONDS: i64 = 2;

#[derive(Debug)]
enum TestNode {
    Replica(Box<Replica>),
    /// Keeps what it receives.
    Probe(Vec<StationMsg>),
}

impl Component for TestNode {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        if let TestNode::Replica(r) = self {
            r.on_start(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match self {
            TestNode::Replica(r) => r.on_message(ctx, from, msg),
            TestNode::Probe(inbox) => inbox.push(msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        if let TestNode::Replica(r) = self {
            r.on_timer(ctx, id, timer);
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        if let TestNode::Replica(r) = self {
            r.on_io(ctx, id, tag, result);
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three replicas and the probe, run until a leader is elected.
fn cluster(seed: u64) -> Sim<TestNode> {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let factory = move |id: NodeId| match id {
        PROBE => TestNode::Probe(Vec::new()),
        _ => TestNode::Replica(Box::new(Replica::new(ReplicaConfig::new(voters.clone())))),
    };
    let mut sim = Sim::new(SimConfig::new(seed, 4), factory).expect("valid configuration");
    for node in 1..=4 {
        sim.start(NodeId(node));
    }
    sim.run_for(ms(3_000));
    sim
}

fn replica(sim: &Sim<TestNode>, node: NodeId) -> Option<&Replica> {
    match sim.component(node)? {
        TestNode::Replica(r) => Some(r),
        TestNode::Probe(_) => None,
    }
}

fn leader(sim: &Sim<TestNode>) -> NodeId {
    let leads = |n: &NodeId| replica(sim, *n).and_then(|r| r.raft()).is_some_and(|r| r.role() == Role::Leader);
    (1..=3).map(NodeId).find(leads).expect("a leader was elected")
}

/// Sends `msg` to `to` as the probe and returns the first reply it gets.
fn ask(sim: &mut Sim<TestNode>, to: NodeId, msg: StationMsg) -> StationMsg {
    let Some(TestNode::Probe(inbox)) = sim.component(PROBE) else { panic!("the probe is n4") };
    let before = inbox.len();
    sim.inject(to, PROBE, msg);
    sim.run_for(ms(300));
    let Some(TestNode::Probe(inbox)) = sim.component(PROBE) else { panic!("the probe is n4") };
    inbox.get(before).cloned().unwrap_or_else(|| panic!("{to} did not answer within 300 ms"))
}

fn command(sim: &mut Sim<TestNode>, to: NodeId, seq: u64, request: Request) -> Result<Response, ReplyError> {
    match ask(sim, to, StationMsg::Request(ClientRequest { client: 1, seq, request })) {
        StationMsg::Reply(reply) => reply.result,
        other => panic!("expected a client reply, got {other:?}"),
    }
}

fn keep_alive(sim: &mut Sim<TestNode>, to: NodeId, seq: u64, lease: LeaseId) -> Result<i64, ReplyError> {
    match ask(sim, to, StationMsg::KeepAlive(KeepAliveRequest { client: 1, seq, lease })) {
        StationMsg::KeepAliveReply(KeepAliveReply { result, .. }) => result,
        other => panic!("expected a keep-alive reply, got {other:?}"),
    }
}

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
