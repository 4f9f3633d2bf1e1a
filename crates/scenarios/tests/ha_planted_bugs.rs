//! Planted bugs that the `ha-failover` scenario must catch within 10,000
//! seeds, each living only here, as a wrapper around the real replica or as
//! the agents' command fence: (a) the coordinator told a node is dead when
//! it merely missed keep-alives for TTL/2, before its lease expired; (b)
//! agents that accept a stale fencing token (or an older command for an
//! instance); (c) a new leader that expires leases without the extension.
//! Each test names the seed that caught the bug when it was written; the
//! correct system passes those seeds (see `ha_failover_sweep_slice.rs` and
//! the CI sweep).

use crate::common;

use common::expiry::ExpiresWithoutExtension;
use haven_ha::{AgentCommand, Event};
use haven_raft::{Raft, Role};
use haven_runtime::{Component, CtxFor, Instant, IoId, IoResult, NodeId, TimerId};
use haven_scenarios::ha::failover::{self, TTL_SECONDS};
use haven_scenarios::ha::fence::{CommandFence, TokenFence};
use haven_scenarios::kv::node::StationReplica;
use haven_station::{
    HaReport, Replica, ReplicaConfig, ReplicaEvent, ReplicaIo, ReplicaTimer, StateMachine, StationMsg,
};
use haven_store::LeaseId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SEEDS_MAX: u64 = 10_000;
/// What the checker of fencing tokens says when it catches a violation.
const OLD_HOLDER_ACTIVE: &str = "an old holder is still active";

/// Runs seeds with the given replica and fence until `checker` reports a
/// failure, and panics if none does within `SEEDS_MAX`. Seeds before it
/// that another checker failed are printed: the bug is caught either way,
/// but each test is there to show that the checker meant for it catches it.
fn assert_caught_by<R: StationReplica>(checker: &str, wrap: fn(Replica) -> R, fence: fn() -> Box<dyn CommandFence>) {
    for seed in 0..SEEDS_MAX {
        let report = failover::run_with(seed, None, move |config: ReplicaConfig| wrap(Replica::new(config)), fence);
        if report.is_ok() {
            continue;
        }
        let line = report.line();
        if line.contains(checker) {
            println!("caught: {line}");
            return;
        }
        println!("caught by another checker first: {line}");
    }
    panic!("{checker:?} did not catch the planted bug in {SEEDS_MAX} seeds");
}

/// Planted bug (a): beside the real replica, the leader watches the
/// keep-alives it receives (directly or in proxies' batches) and, for a node whose lease saw none for TTL/2,
/// queues `LeaseExpired` itself, through the replicated event queue, long
/// before the store's lease can expire.
#[derive(Debug)]
struct DeathOnSilence {
    inner: Replica,
    nodes: BTreeMap<LeaseId, NodeId>,
    heard: BTreeMap<LeaseId, Instant>,
    declared: BTreeSet<LeaseId>,
}

impl DeathOnSilence {
    fn new(inner: Replica) -> DeathOnSilence {
        DeathOnSilence { inner, nodes: BTreeMap::new(), heard: BTreeMap::new(), declared: BTreeSet::new() }
    }

    fn is_leader(&self) -> bool {
        self.inner.raft().is_some_and(|r| r.role() == Role::Leader)
    }

    fn declare_silent(&mut self, ctx: &mut impl CtxFor<Self>) {
        let now = ctx.now();
        if !self.is_leader() {
            // A new leader starts every clock when it takes office.
            self.heard.values_mut().for_each(|at| *at = now);
            return;
        }
        let silence = Duration::from_secs(TTL_SECONDS as u64) / 2;
        let silent: Vec<(LeaseId, NodeId)> = (self.nodes.iter())
            .filter(|(lease, _)| !self.declared.contains(lease))
            .filter(|(lease, _)| self.heard.get(lease).is_some_and(|at| now.saturating_since(*at) >= silence))
            .map(|(&lease, &node)| (lease, node))
            .collect();
        for (lease, node) in silent {
            self.declared.insert(lease);
            let report = HaReport::Event(Event::LeaseExpired { node });
            self.inner.on_message(ctx, ctx.node(), StationMsg::HaReport(report));
        }
    }
}

impl StationReplica for DeathOnSilence {
    fn raft(&self) -> Option<&Raft> {
        self.inner.raft()
    }

    fn state_machine(&self) -> Option<&StateMachine> {
        self.inner.state_machine()
    }
}

impl Component for DeathOnSilence {
    type Msg = StationMsg;
    type Timer = ReplicaTimer;
    type Io = ReplicaIo;
    type Out = ReplicaEvent;

    fn on_start(&mut self, ctx: &mut impl CtxFor<Self>) {
        self.inner.on_start(ctx);
    }

    fn on_message(&mut self, ctx: &mut impl CtxFor<Self>, from: NodeId, msg: StationMsg) {
        match &msg {
            StationMsg::HaReport(HaReport::Join { node, lease, .. }) => {
                self.nodes.retain(|_, n| n != node);
                self.nodes.insert(*lease, *node);
                self.heard.insert(*lease, ctx.now());
            }
            StationMsg::KeepAlive(keep_alive) => {
                self.heard.insert(keep_alive.lease, ctx.now());
                self.declared.remove(&keep_alive.lease);
            }
            StationMsg::ProxyBatch(batch) => {
                for lease in batch.leases.iter().map(|l| l.lease) {
                    self.heard.insert(lease, ctx.now());
                    self.declared.remove(&lease);
                }
            }
            _ => {}
        }
        self.inner.on_message(ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut impl CtxFor<Self>, id: TimerId, timer: ReplicaTimer) {
        self.inner.on_timer(ctx, id, timer);
        if timer == ReplicaTimer::Lease {
            self.declare_silent(ctx);
        }
    }

    fn on_io(&mut self, ctx: &mut impl CtxFor<Self>, id: IoId, tag: ReplicaIo, result: IoResult) {
        self.inner.on_io(ctx, id, tag, result);
    }
}

/// Planted bug (b): an agent that acts on every command, however stale.
#[derive(Debug)]
struct AcceptsStaleTokens;

impl CommandFence for AcceptsStaleTokens {
    fn admit(&mut self, _command: &AgentCommand) -> Result<(), String> {
        Ok(())
    }
}

fn accepts_stale_tokens() -> Box<dyn CommandFence> {
    Box::new(AcceptsStaleTokens)
}

/// Caught at seed 0 (since session 12, db: token 22 from n5 after token 25
/// from n15); since a deposed leader answers "leader lost" (`bfea7e3`;
/// db: the resource accepted token 23 from n5 after token 27 from n15: n5,
/// merely silent, still held its lease); at seed 1 with proxies before that,
/// at seed 0 before proxies.
#[test]
fn declaring_a_node_dead_before_its_lease_expired_is_caught() {
    assert_caught_by(OLD_HOLDER_ACTIVE, DeathOnSilence::new, TokenFence::boxed);
}

/// Caught at seed 76 since a follower that grants a pre-vote restarts its
/// election timeout (session 12; db accepted token 17 from n5 after token
/// 19; the liveness checker fails seed 20 first: an instance a stale command
/// stopped no longer writes); at seed 449 since a deposed leader answers
/// "leader lost" (`bfea7e3`; a late copy of queue's start with token 12
/// brought n8's instance back after it got token 14); at seed 17 with
/// proxies before that, seed 84 before proxies.
#[test]
fn an_agent_accepting_stale_tokens_is_caught() {
    assert_caught_by(OLD_HOLDER_ACTIVE, |replica| replica, accepts_stale_tokens);
}

/// Caught at seed 0 (ledger: the resource accepted token 5 from n21 after
/// token 8 from n22, since `bfea7e3`; tokens 5 and 13 before it, db's tokens
/// 30 and 49 before proxies).
#[test]
fn expiring_leases_after_a_leader_change_without_the_extension_is_caught() {
    assert_caught_by(OLD_HOLDER_ACTIVE, ExpiresWithoutExtension::new, TokenFence::boxed);
}
