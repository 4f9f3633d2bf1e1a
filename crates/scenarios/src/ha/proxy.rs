//! The simulated proxy: a [`ProxyCore`] hosted by an agent that joined with
//! the proxy label (any agent can be made a proxy; its lease is its
//! liveness, so the stations stop assigning agents to it, and move those it
//! had, once its lease expires).
//!
//! In: agents' keep-alives and reports (the same messages they would send a
//! station), the leader's batch answers and command messages, and the flush
//! tick. Out: one batch at a time to the station believed to lead,
//! keep-alive answers and commands to the agents, and assignment notices.
//!
//! The host only moves messages and picks the station: a `NotLeader` answer
//! with a hint goes to the hinted station next, one without a hint or a
//! batch that timed out to the next station in turn.

use super::agent::{Agent, AgentTimer};
use haven_ha::{AgentCommand, AgentKeepAlive, BatchAnswer, BatchOutcome, Event, ProxyConfig, ProxyCore, ProxyOutput};
use haven_runtime::{CtxFor, NodeId};
use haven_station::{KeepAliveReply, KeepAliveRequest, ReplyError, StationMsg};
use haven_store::StoreError;
use std::time::Duration;

#[derive(Debug)]
pub struct ProxyHost {
    core: ProxyCore,
    servers: Vec<NodeId>,
    leader: usize,
    tick: Duration,
    batches_sent: u64,
}

fn ms_of(ctx: &impl CtxFor<Agent>) -> u64 {
    ctx.now().as_nanos() / 1_000_000
}

impl ProxyHost {
    pub fn new(config: ProxyConfig, servers: Vec<NodeId>) -> ProxyHost {
        let tick = Duration::from_millis(config.flush_interval_ms.max(1));
        ProxyHost { core: ProxyCore::new(config), servers, leader: 0, tick, batches_sent: 0 }
    }

    /// Batches sent to the stations so far.
    pub fn batches_sent(&self) -> u64 {
        self.batches_sent
    }

    pub fn agents_len(&self) -> usize {
        self.core.agents_len()
    }

    pub(crate) fn start(&mut self, ctx: &mut impl CtxFor<Agent>, leader: usize) {
        self.leader = leader;
        ctx.set_timer(self.tick, AgentTimer::ProxyTick);
    }

    pub(crate) fn on_tick(&mut self, ctx: &mut impl CtxFor<Agent>) {
        let out = self.core.tick(ms_of(ctx));
        self.emit(ctx, out);
        ctx.set_timer(self.tick, AgentTimer::ProxyTick);
    }

    pub(crate) fn on_keep_alive(&mut self, ctx: &mut impl CtxFor<Agent>, from: NodeId, request: KeepAliveRequest) {
        let KeepAliveRequest { client, seq, lease } = request;
        let out = self.core.keep_alive(ms_of(ctx), AgentKeepAlive { agent: from, client, seq, lease });
        self.emit(ctx, out);
    }

    pub(crate) fn on_report(&mut self, ctx: &mut impl CtxFor<Agent>, from: NodeId, event: Event) {
        let out = self.core.report(ms_of(ctx), from, event);
        self.emit(ctx, out);
    }

    pub(crate) fn on_answer(&mut self, ctx: &mut impl CtxFor<Agent>, from: NodeId, answer: BatchAnswer) {
        match &answer.outcome {
            BatchOutcome::NotLeader { leader_hint: Some(hint) } if Some(*hint) != Some(from) => {
                self.leader = self.index(*hint).unwrap_or(self.leader + 1);
            }
            BatchOutcome::NotLeader { .. } => self.leader = self.index(from).map_or(self.leader + 1, |i| i + 1),
            BatchOutcome::Done { .. } => self.leader = self.index(from).unwrap_or(self.leader),
            BatchOutcome::Busy => {}
        }
        let out = self.core.answer(ms_of(ctx), answer);
        self.emit(ctx, out);
    }

    pub(crate) fn on_commands(&mut self, ctx: &mut impl CtxFor<Agent>, commands: Vec<AgentCommand>) {
        let out = self.core.commands(commands);
        self.emit(ctx, out);
    }

    fn index(&self, node: NodeId) -> Option<usize> {
        self.servers.iter().position(|&s| s == node)
    }

    fn emit(&mut self, ctx: &mut impl CtxFor<Agent>, outputs: Vec<ProxyOutput>) {
        for output in outputs {
            match output {
                ProxyOutput::Batch(batch) => {
                    self.batches_sent += 1;
                    let to = self.servers[self.leader % self.servers.len()];
                    ctx.send(to, StationMsg::ProxyBatch(batch));
                }
                ProxyOutput::KeepAlive { to, ttl_seconds } => {
                    let result = ttl_seconds.ok_or(ReplyError::Store(StoreError::LeaseNotFound));
                    let reply = KeepAliveReply { client: to.client, seq: to.seq, lease: to.lease, result };
                    ctx.send(to.agent, StationMsg::KeepAliveReply(reply));
                }
                ProxyOutput::Command(command) => ctx.send(command.node, StationMsg::Agent(command)),
                ProxyOutput::Assigned { agent, proxy } => {
                    ctx.send(agent, StationMsg::ProxyAssigned { node: agent, proxy })
                }
                ProxyOutput::TimedOut { .. } => self.leader += 1,
            }
        }
    }
}
