//! The harness of the simulated station tests: three replicas (n1..n3)
//! and a probe node (n4) that keeps every message it receives.
//!
//! In: requests injected as if from the probe. Out: the first reply each
//! gets, and access to the replicas' state for the checks.

#![allow(dead_code)] // each test file uses its own part

use haven_raft::Role;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_sim::{Sim, SimConfig};
use haven_station::{
    ClientRequest, KeepAliveReply, KeepAliveRequest, Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer,
    ReplyError, StationMsg,
};
use haven_store::{LeaseId, Request, Response};
use std::time::Duration;

pub const PROBE: NodeId = NodeId(4);

#[derive(Debug)]
pub enum TestNode {
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

    fn on_messages(&mut self, ctx: &mut impl CtxFor<Self>, batch: Vec<(NodeId, StationMsg)>) {
        match self {
            TestNode::Replica(r) => r.on_messages(ctx, batch),
            TestNode::Probe(inbox) => inbox.extend(batch.into_iter().map(|(_, msg)| msg)),
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

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three replicas and the probe, run until a leader is elected.
pub fn cluster(seed: u64) -> Sim<TestNode> {
    cluster_with(seed, |_| {})
}

/// As [`cluster`], with each replica's configuration adjusted by `adjust`.
pub fn cluster_with(seed: u64, adjust: impl Fn(&mut ReplicaConfig) + 'static) -> Sim<TestNode> {
    cluster_in(SimConfig::new(seed, 4), adjust)
}

/// As [`cluster_with`], in a simulator configured by `config` (4 nodes).
pub fn cluster_in(config: SimConfig, adjust: impl Fn(&mut ReplicaConfig) + 'static) -> Sim<TestNode> {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let factory = move |id: NodeId| match id {
        PROBE => TestNode::Probe(Vec::new()),
        _ => {
            let mut config = ReplicaConfig::new(voters.clone());
            adjust(&mut config);
            TestNode::Replica(Box::new(Replica::new(config)))
        }
    };
    let mut sim = Sim::new(config, factory).expect("valid configuration");
    for node in 1..=4 {
        sim.start(NodeId(node));
    }
    sim.run_for(ms(3_000));
    sim
}

/// Three replicas (n1..n3) with default settings and probes at `probes`,
/// in a simulator of 9 nodes, run until a leader is elected: the HA tests'
/// cluster (agents, proxies and operators are probes).
pub fn cluster_with_probes(seed: u64, probes: &[u64]) -> Sim<TestNode> {
    cluster_with_probes_and(seed, probes, |_| {})
}

/// As [`cluster_with_probes`], with each replica's configuration adjusted.
pub fn cluster_with_probes_and(
    seed: u64,
    probes: &[u64],
    adjust: impl Fn(&mut ReplicaConfig) + 'static,
) -> Sim<TestNode> {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let factory = move |id: NodeId| match id {
        NodeId(1..=3) => {
            let mut config = ReplicaConfig::new(voters.clone());
            adjust(&mut config);
            TestNode::Replica(Box::new(Replica::new(config)))
        }
        _ => TestNode::Probe(Vec::new()),
    };
    let mut sim = Sim::new(SimConfig::new(seed, 9), factory).expect("valid configuration");
    for node in (1..=3).chain(probes.iter().copied()) {
        sim.start(NodeId(node));
    }
    sim.run_for(ms(3_000));
    sim
}

/// Every message probe `node` has received.
pub fn inbox(sim: &Sim<TestNode>, node: u64) -> &[StationMsg] {
    match sim.component(NodeId(node)) {
        Some(TestNode::Probe(inbox)) => inbox,
        _ => panic!("n{node} is a probe"),
    }
}

pub fn replica(sim: &Sim<TestNode>, node: NodeId) -> Option<&Replica> {
    match sim.component(node)? {
        TestNode::Replica(r) => Some(r),
        TestNode::Probe(_) => None,
    }
}

pub fn leader(sim: &Sim<TestNode>) -> NodeId {
    let leads = |n: &NodeId| replica(sim, *n).and_then(|r| r.raft()).is_some_and(|r| r.role() == Role::Leader);
    (1..=3).map(NodeId).find(leads).expect("a leader was elected")
}

/// Sends `msg` to `to` as the probe and returns the first reply it gets.
pub fn ask(sim: &mut Sim<TestNode>, to: NodeId, msg: StationMsg) -> StationMsg {
    let Some(TestNode::Probe(inbox)) = sim.component(PROBE) else { panic!("the probe is n4") };
    let before = inbox.len();
    sim.inject(to, PROBE, msg);
    sim.run_for(ms(300));
    let Some(TestNode::Probe(inbox)) = sim.component(PROBE) else { panic!("the probe is n4") };
    inbox.get(before).cloned().unwrap_or_else(|| panic!("{to} did not answer within 300 ms"))
}

pub fn command(sim: &mut Sim<TestNode>, to: NodeId, seq: u64, request: Request) -> Result<Response, ReplyError> {
    match ask(sim, to, StationMsg::Request(ClientRequest { client: 1, seq, request })) {
        StationMsg::Reply(reply) => reply.result,
        other => panic!("expected a client reply, got {other:?}"),
    }
}

pub fn keep_alive(sim: &mut Sim<TestNode>, to: NodeId, seq: u64, lease: LeaseId) -> Result<i64, ReplyError> {
    match ask(sim, to, StationMsg::KeepAlive(KeepAliveRequest { client: 1, seq, lease })) {
        StationMsg::KeepAliveReply(KeepAliveReply { result, .. }) => result,
        other => panic!("expected a keep-alive reply, got {other:?}"),
    }
}
