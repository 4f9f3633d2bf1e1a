//! A simulated node of a station cluster: a replica, a client, or (in
//! `ha-failover`) an agent, the protected resource or the operator.
//!
//! In/out: whatever the wrapped component takes and emits, mapped into one
//! set of types so replicas and clients share one simulation.

use super::client::{ClientEvent, ClientTimer, KvClient};
use super::lease_client::{LeaseClient, LeaseClientTimer, LeaseEvent};
use super::load::{LoadGen, Retry};
use super::watch_client::{WatchClient, WatchClientTimer, WatchEvent};
use crate::ha::agent::{Agent, AgentEvent, AgentTimer};
use crate::ha::operator::{Operator, OperatorTimer};
use crate::ha::resource::{Resource, Write};
use haven_basics::Never;
use haven_raft::Raft;
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_station::{Replica, ReplicaEvent, ReplicaIo, ReplicaTimer, StateMachine, StationMsg};
use std::fmt::Debug;

/// What the scenarios need of a replica: the component, and a view of its
/// Raft core and state machine for the checkers. Tests plant broken
/// variants by wrapping [`Replica`].
pub trait StationReplica:
    Component<Msg = StationMsg, Timer = ReplicaTimer, Io = ReplicaIo, Out = ReplicaEvent> + Debug + 'static
{
    fn raft(&self) -> Option<&Raft>;
    fn state_machine(&self) -> Option<&StateMachine>;
}

impl StationReplica for Replica {
    fn raft(&self) -> Option<&Raft> {
        Replica::raft(self)
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        Replica::state_machine(self)
    }
}

#[derive(Debug)]
pub enum KvNode<R: StationReplica = Replica> {
    Replica(Box<R>),
    Client(Box<KvClient>),
    /// A benchmark's load generator.
    Load(Box<LoadGen>),
    /// A lease holder of the `lease` scenario.
    LeaseClient(Box<LeaseClient>),
    /// The watcher of the `kv-linearizable` scenario.
    Watcher(Box<WatchClient>),
    /// An agent of the `ha-failover` scenario.
    Agent(Box<Agent>),
    /// The protected resource of `ha-failover`.
    Resource(Box<Resource>),
    /// The operator of `ha-failover`.
    Operator(Box<Operator>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvTimer {
    Replica(ReplicaTimer),
    Client(ClientTimer),
    Load(usize),
    LeaseClient(LeaseClientTimer),
    Watcher(WatchClientTimer),
    Agent(AgentTimer),
    Operator(OperatorTimer),
}

#[derive(Debug)]
pub enum KvIo {
    Replica(ReplicaIo),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOut {
    Replica(ReplicaEvent),
    Client(ClientEvent),
    Load(Retry),
    LeaseClient(LeaseEvent),
    Watcher(WatchEvent),
    Agent(AgentEvent),
    Resource(Write),
}

impl From<ReplicaTimer> for KvTimer {
    fn from(t: ReplicaTimer) -> Self {
        KvTimer::Replica(t)
    }
}
impl From<ClientTimer> for KvTimer {
    fn from(t: ClientTimer) -> Self {
        KvTimer::Client(t)
    }
}
impl From<LeaseClientTimer> for KvTimer {
    fn from(t: LeaseClientTimer) -> Self {
        KvTimer::LeaseClient(t)
    }
}
impl From<WatchClientTimer> for KvTimer {
    fn from(t: WatchClientTimer) -> Self {
        KvTimer::Watcher(t)
    }
}
impl From<AgentTimer> for KvTimer {
    fn from(t: AgentTimer) -> Self {
        KvTimer::Agent(t)
    }
}
impl From<OperatorTimer> for KvTimer {
    fn from(t: OperatorTimer) -> Self {
        KvTimer::Operator(t)
    }
}
impl From<Never> for KvTimer {
    fn from(never: Never) -> Self {
        match never {}
    }
}
impl From<usize> for KvTimer {
    fn from(slot: usize) -> Self {
        KvTimer::Load(slot)
    }
}
impl From<ReplicaIo> for KvIo {
    fn from(io: ReplicaIo) -> Self {
        KvIo::Replica(io)
    }
}
impl From<Never> for KvIo {
    fn from(never: Never) -> Self {
        match never {}
    }
}

impl<R: StationReplica> KvNode<R> {
    pub fn replica(&self) -> Option<&R> {
        match self {
            KvNode::Replica(r) => Some(r),
            _ => None,
        }
    }

    pub fn agent(&self) -> Option<&Agent> {
        match self {
            KvNode::Agent(a) => Some(a),
            _ => None,
        }
    }

    pub fn lease_client(&self) -> Option<&LeaseClient> {
        match self {
            KvNode::LeaseClient(c) => Some(c),
            _ => None,
        }
    }

    pub fn load(&self) -> Option<&LoadGen> {
        match self {
            KvNode::Load(l) => Some(l),
            _ => None,
        }
    }
}

/// Runs `f` on the wrapped component with a sub-context, then reports its
/// outputs as this node's.
macro_rules! delegate {
    ($self:ident, $ctx:ident, |$c:ident, $sub:ident| $body:expr) => {
        match $self {
            KvNode::Replica($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Replica(o)));
            }
            KvNode::Client($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Client(o)));
            }
            KvNode::Load($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Load(o)));
            }
            KvNode::LeaseClient($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::LeaseClient(o)));
            }
            KvNode::Watcher($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Watcher(o)));
            }
            KvNode::Agent($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Agent(o)));
            }
            KvNode::Resource($c) => {
                let mut outs = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                outs.into_iter().for_each(|o| $ctx.output(KvOut::Resource(o)));
            }
            KvNode::Operator($c) => {
                let mut outs: Vec<Never> = Vec::new();
                let $sub = &mut $ctx.sub(&mut outs);
                $body;
                if let Some(never) = outs.into_iter().next() {
                    match never {}
                }
            }
        }
    };
}

impl<R: StationReplica> Component for KvNode<R> {
    type Msg = StationMsg;
    type Timer = KvTimer;
    type Io = KvIo;
    type Out = KvOut;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        delegate!(self, ctx, |c, sub| c.on_start(sub));
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        delegate!(self, ctx, |c, sub| c.on_message(sub, from, msg));
    }

    /// A replica gets the batch whole (it shares work across it); the
    /// other nodes take it one message at a time.
    fn on_messages(&mut self, ctx: &mut impl CtxFor<Self>, batch: Vec<(NodeId, StationMsg)>) {
        if let KvNode::Replica(r) = self {
            let mut outs = Vec::new();
            r.on_messages(&mut ctx.sub(&mut outs), batch);
            outs.into_iter().for_each(|o| ctx.output(KvOut::Replica(o)));
            return;
        }
        for (from, msg) in batch {
            self.on_message(ctx, from, msg);
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: KvTimer) {
        match (self, timer) {
            (KvNode::Replica(r), KvTimer::Replica(t)) => {
                let mut outs = Vec::new();
                r.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::Replica(o)));
            }
            (KvNode::Client(c), KvTimer::Client(t)) => {
                let mut outs = Vec::new();
                c.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::Client(o)));
            }
            (KvNode::Load(l), KvTimer::Load(t)) => {
                let mut outs = Vec::new();
                l.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::Load(o)));
            }
            (KvNode::LeaseClient(c), KvTimer::LeaseClient(t)) => {
                let mut outs = Vec::new();
                c.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::LeaseClient(o)));
            }
            (KvNode::Watcher(w), KvTimer::Watcher(t)) => {
                let mut outs = Vec::new();
                w.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::Watcher(o)));
            }
            (KvNode::Agent(a), KvTimer::Agent(t)) => {
                let mut outs = Vec::new();
                a.on_timer(&mut ctx.sub(&mut outs), id, t);
                outs.into_iter().for_each(|o| ctx.output(KvOut::Agent(o)));
            }
            (KvNode::Operator(o), KvTimer::Operator(t)) => {
                let mut outs: Vec<Never> = Vec::new();
                o.on_timer(&mut ctx.sub(&mut outs), id, t);
                if let Some(never) = outs.into_iter().next() {
                    match never {}
                }
            }
            (node, timer) => panic!("timer {timer:?} fired on the wrong kind of node {node:?}"),
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: KvIo, result: IoResult) {
        let KvIo::Replica(tag) = tag;
        let KvNode::Replica(r) = self else { panic!("a client completed replica i/o") };
        let mut outs = Vec::new();
        r.on_io(&mut ctx.sub(&mut outs), id, tag, result);
        outs.into_iter().for_each(|o| ctx.output(KvOut::Replica(o)));
    }
}
