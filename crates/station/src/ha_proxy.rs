//! Proxies at the station: the leader's side of a proxy batch, commands
//! routed through proxies, and agents asking for their proxy.
//!
//! In: a [`ProxyBatch`] (its agents' leases to renew and their reports), an
//! agent's `ProxyQuery` or `ProxyPlaceQuery`, and every applied coordinator
//! step. Out: one `ProxyAnswer` per batch, `ProxyAssigned` and `ProxyPlace`
//! answers, and per applied step
//! one `ProxyCommands` message to each proxy whose agents it commands.
//!
//! A batch on the leader: its reports (less the steady-state repeats the
//! graph already shows, as for single reports) are proposed in one entry
//! (`Command::HaEvents`), then the whole batch asks Raft for one read index
//! and its leases are renewed once the read is confirmed and applied —
//! exactly the path of a single keep-alive (`reads.rs`), so a renewal counts
//! only at a confirmed leader and never for a lease whose expiry committed
//! first. The answer goes out then, with each lease's renewal, whether the
//! reports were proposed, and the batch's agents that the applied graph
//! assigns elsewhere. A follower answers `NotLeader` with its hint; a leader
//! out of room answers `Busy`; the proxy then sends the batch again.
//!
//! Commands: once a step applies on the leader that proposed it, the
//! commands for a node the graph assigns to a live proxy go to that proxy,
//! grouped, under the same conditions as direct commands (`ha_steering.rs`:
//! only this term's steps, none to a node whose death is queued); the rest
//! go on to the agents directly. An agent whose proxy does not answer talks
//! to the stations and still gets its commands through the proxy while the
//! graph names it; once the proxy's lease has expired, the coordinator moves
//! the agent, and its commands follow. Only where commands are pushed at
//! all (the simulator): `haven station`'s proxies, like its agents, poll
//! them from any station's committed graph, and are not Raft peers.

use crate::command::Command;
use crate::ha_state::HaApplied;
use crate::msg::{HaReport, ReplyError, StationMsg};
use crate::reads::{PendingRead, ReadOp};
use crate::replica::Replica;
use crate::running::Running;
use haven_ha::{
    AgentCommand, BatchAnswer, BatchLease, BatchOutcome, Event, PROXY_LABEL, PROXY_URL_LABEL, ProxyBatch, Renewal,
    StateGraph,
};
use haven_raft::{ProposeError, Role};
use haven_runtime::{CtxFor, NodeId};
use haven_store::StoreError;
use std::collections::BTreeMap;

/// A batch's leases waiting for the read index, and what became of its reports.
#[derive(Debug)]
pub(crate) struct ProxyRead {
    pub(crate) leases: Vec<BatchLease>,
    pub(crate) reports_proposed: bool,
}

fn answer(ctx: &mut impl CtxFor<Replica>, to: NodeId, seq: u64, outcome: BatchOutcome) {
    ctx.send(to, StationMsg::ProxyAnswer(BatchAnswer { seq, outcome }));
}

/// The proxy of a live node, if the graph assigns one that is alive.
fn proxy_of(graph: &StateGraph, node: NodeId, now_ms: u64) -> Option<NodeId> {
    let proxy = NodeId(graph.nodes.get(&node)?.proxy?);
    graph.nodes.get(&proxy).filter(|p| p.is_alive(now_ms)).map(|_| proxy)
}

/// The live proxy the graph assigns `node`, if it is labelled a proxy (a
/// node labelled by hand without a URL sends its agents to the stations).
fn proxy_place(graph: &StateGraph, node: NodeId, now_ms: u64) -> Option<(NodeId, Option<String>)> {
    let proxy = proxy_of(graph, node, now_ms)?;
    let labels = &graph.nodes.get(&proxy)?.labels;
    (labels.get(PROXY_LABEL.0).map(String::as_str) == Some(PROXY_LABEL.1))
        .then(|| (proxy, labels.get(PROXY_URL_LABEL).cloned()))
}

/// A refused batch read, answered in the proxy's terms.
pub(crate) fn refuse_batch(ctx: &mut impl CtxFor<Replica>, to: NodeId, seq: u64, error: ReplyError) {
    let outcome = match error {
        ReplyError::NotLeader { leader_hint } => BatchOutcome::NotLeader { leader_hint },
        _ => BatchOutcome::Busy,
    };
    answer(ctx, to, seq, outcome);
}

impl Running {
    /// The answer to an agent's `ProxyPlaceQuery`, from the applied graph.
    pub(crate) fn proxy_place(&self, node: NodeId) -> Option<(NodeId, Option<String>)> {
        let ha = self.sm.ha();
        proxy_place(&ha.graph, node, ha.time_ms_last())
    }

    /// A proxy's message or an agent's question; a batch is refused `Busy`
    /// once `waiters_max` requests wait here, like a single keep-alive.
    pub(crate) fn on_proxy_msg(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        from: NodeId,
        msg: StationMsg,
        waiters_max: usize,
    ) {
        let busy = self.waiters.len() + self.reads_asked.len() + self.reads_confirmed.len() >= waiters_max;
        match msg {
            StationMsg::ProxyBatch(batch) => self.take_proxy_batch(ctx, from, batch, busy),
            StationMsg::ProxyQuery { node } => {
                let proxy = proxy_of(&self.sm.ha().graph, node, self.sm.ha().time_ms_last());
                ctx.send(from, StationMsg::ProxyAssigned { node, proxy });
            }
            _ => {}
        }
    }

    fn take_proxy_batch(&mut self, ctx: &mut impl CtxFor<Replica>, from: NodeId, batch: ProxyBatch, busy: bool) {
        let ProxyBatch { seq, leases, reports } = batch;
        if self.role != Role::Leader {
            return answer(ctx, from, seq, BatchOutcome::NotLeader { leader_hint: self.raft.leader() });
        }
        if busy {
            return answer(ctx, from, seq, BatchOutcome::Busy);
        }
        // Steady-state repeats change nothing (see `HaState::already_known`).
        let ha = self.sm.ha();
        let reports: Vec<Event> = (reports.into_iter().map(HaReport::Event))
            .filter(|report| !ha.already_known(report))
            .filter_map(|report| match report {
                HaReport::Event(event) => Some(event),
                HaReport::Join { .. } => None,
            })
            .collect();
        let reports_proposed = reports.is_empty()
            || match self.raft.propose(&Command::HaEvents { events: reports }.encode()) {
                Ok(_) => true,
                Err(ProposeError::NotLeader { leader_hint }) => {
                    return answer(ctx, from, seq, BatchOutcome::NotLeader { leader_hint });
                }
                Err(_) => false,
            };
        let read = ProxyRead { leases, reports_proposed };
        self.ask_read(ctx, PendingRead { to: from, client: 0, seq, op: ReadOp::ProxyBatch(Box::new(read)) });
    }

    /// The batch's read is confirmed and applied: renew its leases and answer.
    pub(crate) fn serve_proxy_batch(&mut self, ctx: &mut impl CtxFor<Replica>, to: NodeId, seq: u64, read: &ProxyRead) {
        let now = ctx.now();
        let mut renewals = Vec::with_capacity(read.leases.len());
        for lease in &read.leases {
            let renewal = match self.keep_alive(now, lease.lease) {
                Ok(ttl_seconds) => Renewal::Renewed { ttl_seconds },
                Err(ReplyError::Store(StoreError::LeaseNotFound)) => Renewal::NotFound,
                Err(error) => return refuse_batch(ctx, to, seq, error),
            };
            renewals.push((lease.lease, renewal));
        }
        let (graph, now_ms) = (&self.sm.ha().graph, self.sm.ha().time_ms_last());
        let moved = (read.leases.iter())
            .filter(|l| graph.nodes.get(&l.agent).is_some_and(|n| n.session == l.lease && n.is_alive(now_ms)))
            .map(|l| (l.agent, proxy_of(graph, l.agent, now_ms)))
            .filter(|(_, proxy)| *proxy != Some(to))
            .collect();
        let outcome = BatchOutcome::Done { renewals, reports_proposed: read.reports_proposed, moved };
        answer(ctx, to, seq, outcome);
    }

    /// Sends a just-applied step's commands for proxied nodes to their
    /// proxies, one message per proxy, and hands back the step with the
    /// commands still to send directly.
    pub(crate) fn commands_via_proxies(
        &mut self,
        ctx: &mut impl CtxFor<Replica>,
        entry_term: u64,
        applied: HaApplied,
    ) -> HaApplied {
        let HaApplied::Stepped(mut step) = applied else { return applied };
        let pushed = self.ha.push; // else proxies, like agents, poll the committed graph
        if !pushed || step.commands.is_empty() || self.role != Role::Leader || entry_term != self.raft.term() {
            return HaApplied::Stepped(step); // the direct path decides what to do with it
        }
        let ha = self.sm.ha();
        let (graph, now_ms) = (&ha.graph, ha.time_ms_last());
        let dying = ha.dying();
        let mut by_proxy: BTreeMap<NodeId, Vec<AgentCommand>> = BTreeMap::new();
        let mut direct = Vec::new();
        for command in std::mem::take(&mut step.commands) {
            match proxy_of(graph, command.node, now_ms) {
                Some(_) if dying.contains(&command.node) => {} // see ha_steering.rs: fenced once decided
                Some(proxy) => by_proxy.entry(proxy).or_default().push(command),
                None => direct.push(command),
            }
        }
        for (proxy, commands) in by_proxy {
            ctx.send(proxy, StationMsg::ProxyCommands(commands));
        }
        step.commands = direct;
        HaApplied::Stepped(step)
    }
}
