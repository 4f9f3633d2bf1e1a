//! The operator of the `ha-failover` scenario: declares the services.
//!
//! In: replies and views from station replicas, its round timer. Out:
//! `AddService` requests (`HaRequest`, answered once the action is queued
//! through the log) and `HaQuery`s of a replica's applied state graph.
//!
//! Every round, each service not yet seen in a graph is handled: until its
//! request is acknowledged, it is sent (again) to the replica believed to
//! lead, moving to the next replica when a round passed without an answer
//! or one answered `NotLeader`; once acknowledged, the operator asks that
//! replica for its graph until the service shows up there. Then it stops.
//! A request answered twice (a retry after a lost reply) queues the action
//! twice, which adding the same spec makes harmless.

use haven_basics::Never;
use haven_ha::{Event, OperatorAction, ServiceSpec};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{HaReply, HaReport, HaRequest, HaView, ReplyError, StationMsg};
use rand::RngExt;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub servers: Vec<NodeId>,
    pub services: Vec<ServiceSpec>,
    pub round: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorTimer;

/// Where one service's declaration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Declared {
    /// Request `seq` sent, not acknowledged.
    Sent {
        seq: u64,
    },
    Queued,
    InGraph,
}

#[derive(Debug)]
pub struct Operator {
    config: OperatorConfig,
    client: u64,
    next_seq: u64,
    leader: usize,
    answered: bool,
    declared: BTreeMap<String, Declared>,
}

impl Operator {
    pub fn new(config: OperatorConfig) -> Operator {
        assert!(!config.servers.is_empty(), "an operator needs a replica to talk to");
        Operator { config, client: 0, next_seq: 1, leader: 0, answered: true, declared: BTreeMap::new() }
    }

    /// Whether every service was seen in a replica's graph.
    pub fn done(&self) -> bool {
        self.declared.len() == self.config.services.len() && self.declared.values().all(|d| *d == Declared::InGraph)
    }

    fn round(&mut self, ctx: &mut impl CtxFor<Self>) {
        if !self.answered {
            self.leader += 1;
        }
        self.answered = false;
        let to = self.config.servers[self.leader % self.config.servers.len()];
        let specs = self.config.services.clone();
        let mut asked = false;
        for spec in specs {
            match self.declared.get(&spec.name) {
                Some(Declared::InGraph) => {}
                // One view shows every service: ask once per round, not once per service.
                Some(Declared::Queued) if asked => {}
                Some(Declared::Queued) => {
                    asked = true;
                    ctx.send(to, StationMsg::HaQuery { client: self.client, seq: 0 });
                }
                Some(Declared::Sent { .. }) | None => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.declared.insert(spec.name.clone(), Declared::Sent { seq });
                    let report = HaReport::Event(Event::Operator(OperatorAction::AddService(Box::new(spec))));
                    ctx.send(to, StationMsg::HaRequest(HaRequest { client: self.client, seq, report }));
                }
            }
        }
        if !self.done() {
            ctx.set_timer(self.config.round, OperatorTimer);
        }
    }

    fn on_reply(&mut self, from: NodeId, reply: HaReply) {
        let Some((name, _)) = self.declared.iter().find(|(_, d)| **d == Declared::Sent { seq: reply.seq }) else {
            return;
        };
        let name = name.clone();
        match reply.result {
            Ok(_) => {
                self.answered = true;
                self.leader = self.config.servers.iter().position(|&s| s == from).unwrap_or(self.leader);
                self.declared.insert(name, Declared::Queued);
            }
            Err(ReplyError::NotLeader { leader_hint: Some(hint) }) => {
                self.leader = self.config.servers.iter().position(|&s| s == hint).unwrap_or(self.leader + 1);
                self.answered = true;
            }
            Err(_) => {}
        }
    }

    fn on_view(&mut self, view: &HaView) {
        self.answered = true;
        for (name, declared) in &mut self.declared {
            if *declared == Declared::Queued && view.graph.services.contains_key(name) {
                *declared = Declared::InGraph;
            }
        }
    }
}

impl Component for Operator {
    type Msg = StationMsg;
    type Timer = OperatorTimer;
    type Io = Never;
    type Out = Never;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.client = (ctx.node().0 << 32) | u64::from(ctx.rng().random::<u32>());
        self.round(ctx);
    }

    fn on_message(&mut self, _ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match msg {
            StationMsg::HaReply(reply) if reply.client == self.client => self.on_reply(from, reply),
            StationMsg::HaView(view) if view.client == self.client => self.on_view(&view),
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, _id: TimerId, _timer: OperatorTimer) {
        self.round(ctx);
    }

    fn on_io(&mut self, _ctx: &mut impl CtxFor<Self>, _id: IoId, tag: Never, _result: IoResult) {
        match tag {}
    }
}
