//! Planted watch bugs that `kv-linearizable` must catch, each a wrapper
//! around the real replica that lives only here:
//! - a replica that silently skips every third batch of watch events
//!   (numbering the rest as if nothing was skipped, so the watcher cannot
//!   tell it from a healthy stream): the watch-order check at the end;
//! - a replica that silently drops every batch of events (its watches look
//!   open, and re-watching elsewhere meets the same): nothing the watcher
//!   receives is out of order, so only the liveness check can see it.

use haven_raft::Raft;
use haven_runtime::{Component, Ctx, CtxFor, Instant, IoId, IoRequest, IoResult, NodeId, Rng, TimerId};
use haven_scenarios::kv::linearizable;
use haven_scenarios::kv::node::StationReplica;
use haven_station::{Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer, StateMachine, StationMsg};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug)]
struct SkipsWatchBatches {
    replica: Replica,
    /// Watch batches with events sent so far (every `skip_every`-th is dropped).
    sent: u64,
    skip_every: u64,
    /// Batches dropped per (client node, session, watch), to renumber the rest.
    dropped: BTreeMap<(NodeId, u64, u64), u64>,
}

/// The replica's context with its watch messages filtered.
struct Skipping<'a, X> {
    parent: &'a mut X,
    sent: &'a mut u64,
    skip_every: u64,
    dropped: &'a mut BTreeMap<(NodeId, u64, u64), u64>,
}

impl<X: CtxFor<Replica>> Ctx for Skipping<'_, X> {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn node(&self) -> NodeId {
        self.parent.node()
    }
    fn now(&self) -> Instant {
        self.parent.now()
    }
    fn rng(&mut self) -> &mut Rng {
        self.parent.rng()
    }
    fn send(&mut self, to: NodeId, msg: StationMsg) {
        let StationMsg::WatchEvents(mut batch) = msg else { return self.parent.send(to, msg) };
        let dropped = self.dropped.entry((to, batch.client, batch.watch)).or_default();
        if !batch.events.is_empty() {
            *self.sent += 1;
            if (*self.sent).is_multiple_of(self.skip_every) {
                *dropped += 1;
                return;
            }
        }
        batch.batch -= *dropped;
        self.parent.send(to, StationMsg::WatchEvents(batch));
    }
    fn set_timer(&mut self, after: Duration, timer: ReplicaTimer) -> TimerId {
        self.parent.set_timer(after, timer)
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.parent.cancel_timer(id)
    }
    fn io(&mut self, request: IoRequest, tag: ReplicaIo) -> IoId {
        self.parent.io(request, tag)
    }
    fn output(&mut self, out: ReplicaEvent) {
        self.parent.output(out)
    }
}

impl SkipsWatchBatches {
    fn ctx<'a, X: CtxFor<Replica>>(&'a mut self, parent: &'a mut X) -> (&'a mut Replica, Skipping<'a, X>) {
        let skip_every = self.skip_every;
        (&mut self.replica, Skipping { parent, sent: &mut self.sent, skip_every, dropped: &mut self.dropped })
    }
}

impl StationReplica for SkipsWatchBatches {
    fn raft(&self) -> Option<&Raft> {
        self.replica.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.replica.state_machine()
    }
}

impl Component for SkipsWatchBatches {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        let (replica, mut ctx) = self.ctx(ctx);
        replica.on_start(&mut ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        let (replica, mut ctx) = self.ctx(ctx);
        replica.on_message(&mut ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        let (replica, mut ctx) = self.ctx(ctx);
        replica.on_timer(&mut ctx, id, timer);
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        let (replica, mut ctx) = self.ctx(ctx);
        replica.on_io(&mut ctx, id, tag, result);
    }
}

fn skipping(skip_every: u64) -> impl Fn(ReplicaConfig) -> SkipsWatchBatches {
    move |config| SkipsWatchBatches { replica: Replica::new(config), sent: 0, skip_every, dropped: BTreeMap::new() }
}

#[test]
fn a_replica_skipping_watch_batches_is_caught_by_the_watch_order_check() {
    let report = (0..8)
        .map(|seed| linearizable::run_with(seed, None, skipping(3)))
        .find(|report| !report.is_ok())
        .expect("a watcher missing every third batch went unnoticed for 8 seeds");
    println!("caught: {}", report.line());
    assert!(report.line().contains("watch order"), "{}", report.line());
}

#[test]
fn replicas_that_never_deliver_watch_events_are_caught_by_the_liveness_check() {
    let report = linearizable::run_with(0, None, skipping(1));
    println!("caught: {}", report.line());
    assert!(report.line().contains("the watcher catches up"), "{}", report.line());
}

#[test]
fn the_real_replica_passes_the_watch_order_check_on_the_same_seeds() {
    for seed in 0..4 {
        let report = linearizable::run(seed, None);
        assert!(report.is_ok(), "{}", report.line());
    }
}
