//! One wrapper for the planted-bug tests: the real replica, with a hook that
//! may take a message or a timer before the replica sees it. A planted bug
//! then states only what it does differently. Bugs more than one scenario
//! must catch live here too.

#![allow(dead_code)] // each test file uses the hooks it needs

pub mod expiry;

use haven_raft::{Raft, Role};
use haven_runtime::{Component, CtxFor, IoId, IoResult, NodeId, TimerId};
use haven_scenarios::kv::node::StationReplica;
use haven_station::{
    ClientReply, Replica, ReplicaEvent, ReplicaIo, ReplicaTimer, ReplyError, StateMachine, StationMsg,
};
use haven_store::{Request, Response};

/// What a planted bug does instead of the replica.
pub trait Plant: std::fmt::Debug + 'static {
    /// Handles `msg` in the replica's place; `false` passes it on.
    fn message(
        &mut self,
        _replica: &Replica,
        _ctx: &mut impl CtxFor<Replica>,
        _from: NodeId,
        _msg: &StationMsg,
    ) -> bool {
        false
    }

    /// Swallows `timer`; `false` passes it on.
    fn timer(&mut self, _timer: ReplicaTimer) -> bool {
        false
    }
}

#[derive(Debug)]
pub struct Planted<P: Plant> {
    pub replica: Replica,
    pub plant: P,
}

impl<P: Plant> StationReplica for Planted<P> {
    fn raft(&self) -> Option<&Raft> {
        self.replica.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.replica.state_machine()
    }
}

impl<P: Plant> Component for Planted<P> {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.replica.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        if !self.plant.message(&self.replica, ctx, from, &msg) {
            self.replica.on_message(ctx, from, msg);
        }
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        if !self.plant.timer(timer) {
            self.replica.on_timer(ctx, id, timer);
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        self.replica.on_io(ctx, id, tag, result);
    }
}

/// Planted bug (b): a replica that believes it is leader answers reads from
/// its own state, without ReadIndex or a lease. A deposed leader that has
/// not noticed yet serves stale data.
#[derive(Debug)]
pub struct LeaderLocalReads;

impl Plant for LeaderLocalReads {
    fn message(&mut self, replica: &Replica, ctx: &mut impl CtxFor<Replica>, from: NodeId, msg: &StationMsg) -> bool {
        let believes_leader = replica.raft().is_some_and(|r| r.role() == Role::Leader);
        let StationMsg::Request(request) = msg else { return false };
        let Request::Range(range) = &request.request else { return false };
        if !believes_leader {
            return false;
        }
        let store = replica.state_machine().expect("a leader is running").store();
        let result = store.range(range).map(Response::Range).map_err(ReplyError::Store);
        ctx.send(
            from,
            StationMsg::Reply(ClientReply { client: request.client, seq: request.seq, result, commit: None }),
        );
        true
    }
}
