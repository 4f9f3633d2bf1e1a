//! The coordinator on the leader: from the replicated event queue and the
//! state graph to committed decisions, and from committed decisions to
//! commands for the agents.
//!
//! In: agents' and operators' reports ([`HaReport`], proposed as
//! commands), every turn of the replica (`drive`), and applied HA entries.
//! Out: on the leader, one [`Command::HaStep`] at a time — the
//! coordinator's step for the oldest queued event, or for a tick when the
//! queue is empty and a step would change something — and, once a step is
//! applied, its commands sent to the agents they name. A command is never
//! sent before the decision behind it is committed, so a new leader never
//! contradicts what an agent was told.
//!
//! Agents repeat what they observe (an instance is still active) so that
//! a lost report heals itself; the leader drops a repeat that the graph it
//! applied already shows, so steady state costs no log entry and no step.
//!
//! Cluster time: each step carries the leader's time in milliseconds. A
//! new leader's clock is another machine's, so the leader adds an offset
//! fixed when it takes office that makes its time continue from the last
//! committed step's: time in the graph never goes back.

use crate::command::Command;
use crate::ha_fence::{FenceConfig, HaFence};
use crate::ha_state::{HaApplied, STEP_EVENTS_LEN_MAX};
use crate::msg::{COMMANDS_LEN_MAX, CommandsOf, HaReply, HaReport, HaRequest, HaView, ReplyError, StationMsg};
use crate::replica::{Replica, ReplicaEvent};
use crate::running::Running;
use haven_ha::{AgentCommand, CoordinatorConfig};
use haven_raft::{ProposeError, Role, StateMachine as _};
use haven_runtime::{CtxFor, Instant, NodeId};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct HaSteering {
    pub(crate) config: CoordinatorConfig,
    /// Shortest interval between two tick steps.
    pub(crate) tick_interval: Duration,
    /// The log index of this leader's step in flight, if any.
    step_at: Option<u64>,
    /// When this leader last ran a tick step.
    ticked_at: Option<Instant>,
    /// Added to this replica's clock while it leads (see the header).
    offset_ms: Option<u64>,
    /// Events the next step decides about at most: halved when a step
    /// did not fit one log entry, doubled back after each that did.
    batch_len_max: usize,
    /// The coordinator's `overdue_per_step_max` for the next step: halved
    /// once a step of one event still did not fit, doubled back after each
    /// that did, up to the configured value.
    overdue_max: usize,
    /// When a step of one event and one overdue record did not fit: the
    /// leader tries again only a tick later, not on every turn.
    oversized_at: Option<Instant>,
    /// `ReplicaConfig::agent_commands_pushed`.
    pub(crate) push: bool,
    /// External fencing (`ha_fence.rs`).
    pub(crate) fence: HaFence,
}

impl HaSteering {
    pub(crate) fn new(
        config: CoordinatorConfig,
        tick_interval: Duration,
        push: bool,
        fence: Option<FenceConfig>,
    ) -> HaSteering {
        let batch_len_max = STEP_EVENTS_LEN_MAX;
        let fence = HaFence::new(fence);
        HaSteering {
            overdue_max: config.overdue_per_step_max.max(1),
            oversized_at: None,
            config,
            tick_interval,
            step_at: None,
            ticked_at: None,
            offset_ms: None,
            batch_len_max,
            push,
            fence,
        }
    }
}

pub(crate) fn ha_reply(
    ctx: &mut impl CtxFor<Replica>,
    to: NodeId,
    (client, seq): (u64, u64),
    result: Result<u64, ReplyError>,
) {
    ctx.send(to, StationMsg::HaReply(HaReply { client, seq, result }));
}

fn ms(at: Instant) -> u64 {
    at.as_nanos() / 1_000_000
}

impl Running {
    /// A report from an agent, for the queue: not answered (not the
    /// leader, or busy: dropped; the agent repeats it).
    pub(crate) fn propose_report(&mut self, report: HaReport) {
        if self.role == Role::Leader && self.sm.ha().already_known(&report) {
            return; // steady state: no log entry, no step
        }
        let _ = self.raft.propose(&Command::Ha { ack: None, report }.encode());
    }

    /// A report answered once queued: the operator's actions.
    pub(crate) fn propose_ha_request(&mut self, ctx: &mut impl CtxFor<Replica>, from: NodeId, request: HaRequest) {
        let HaRequest { client, seq, report } = request;
        let refused = match self.raft.propose(&Command::Ha { ack: Some((client, seq)), report }.encode()) {
            Ok(_) => {
                self.waiters.insert((client, seq), from);
                return;
            }
            Err(ProposeError::NotLeader { leader_hint }) => ReplyError::NotLeader { leader_hint },
            Err(_) => ReplyError::Busy,
        };
        ha_reply(ctx, from, (client, seq), Err(refused));
    }

    /// The operator's report is queued (or was refused: the queue is full).
    pub(crate) fn ha_acked(&mut self, ctx: &mut impl CtxFor<Replica>, session: (u64, u64), applied: &HaApplied) {
        let Some(to) = self.waiters.remove(&session) else { return };
        let result = match applied {
            HaApplied::Queued(id) => Ok(*id),
            _ => Err(ReplyError::Busy),
        };
        ha_reply(ctx, to, session, result);
    }

    /// This replica's applied graph, as it stands (may be behind the leader's).
    pub(crate) fn ha_view(&self, ctx: &mut impl CtxFor<Replica>, from: NodeId, client: u64, seq: u64) {
        let ha = self.sm.ha();
        let view =
            HaView { client, seq, graph: ha.graph.clone(), queue_len: ha.queue_len() as u64, version: ha.version() };
        ctx.send(from, StationMsg::HaView(Box::new(view)));
    }

    /// The commands this replica's applied graph awaits from `of` (a
    /// node's in instance order, a proxy's oldest first), through the
    /// graph's indexes: the cost is what awaits, not the graph's size.
    pub(crate) fn commands_of(
        &self,
        ctx: &mut impl CtxFor<Replica>,
        from: NodeId,
        (client, seq): (u64, u64),
        of: CommandsOf,
    ) {
        let graph = &self.sm.ha().graph;
        let commands: Vec<AgentCommand> = match of {
            CommandsOf::Node(node) => {
                let awaited = graph.instances_on(node).filter_map(|i| i.command.as_ref());
                awaited.map(|issued| issued.command.clone()).take(COMMANDS_LEN_MAX).collect()
            }
            CommandsOf::Proxy(proxy) => {
                let served = |node: NodeId| graph.nodes.get(&node).is_some_and(|n| n.proxy == Some(proxy.0));
                graph.commands_awaited().filter(|c| served(c.node)).take(COMMANDS_LEN_MAX).cloned().collect()
            }
        };
        ctx.send(from, StationMsg::Commands { client, seq, commands });
    }

    /// The leader's cluster time now.
    fn cluster_ms(&mut self, now: Instant) -> u64 {
        let last = self.sm.ha().time_ms_last();
        let offset = *self.ha.offset_ms.get_or_insert_with(|| last.saturating_sub(ms(now)));
        (ms(now) + offset).max(last)
    }

    /// On the leader, with no step in flight: proposes the coordinator's
    /// step for the oldest event, or a tick step that changes something.
    /// Returns whether Raft took a proposal.
    pub(crate) fn steer_ha(&mut self, ctx: &mut impl CtxFor<Replica>) -> bool {
        let now = ctx.now();
        if self.role != Role::Leader {
            self.ha.offset_ms = None;
            self.ha.step_at = None;
            return false;
        }
        if self.ha.step_at.is_some_and(|index| index > self.sm.applied_index()) {
            return false;
        }
        self.ha.step_at = None;
        if self.ha.oversized_at.is_some_and(|at| now.saturating_since(at) < self.ha.tick_interval) {
            return false;
        }
        let state = self.sm.ha();
        let tick_due = self.ha.ticked_at.is_none_or(|at| now.saturating_since(at) >= self.ha.tick_interval);
        if state.front().is_none() && (!tick_due || state.graph.services.is_empty() && state.graph.nodes.is_empty()) {
            return false;
        }
        let now_ms = self.cluster_ms(now);
        let config = CoordinatorConfig { overdue_per_step_max: self.ha.overdue_max, ..self.ha.config.clone() };
        let (consumed, decided) = self.sm.ha_mut().decide(now_ms, self.ha.batch_len_max, &config);
        if consumed.is_none() {
            self.ha.ticked_at = Some(now);
        }
        if consumed.is_none() && decided.changes.is_empty() && decided.decisions.is_empty() {
            return false;
        }
        let command = Command::HaStep { version: self.sm.ha().version(), consumed, now_ms, step: decided };
        match self.raft.propose(&command.encode()) {
            Ok(index) => {
                self.ha.step_at = Some(index);
                self.ha.batch_len_max = (self.ha.batch_len_max * 2).min(STEP_EVENTS_LEN_MAX);
                self.ha.overdue_max = (self.ha.overdue_max * 2).min(self.ha.config.overdue_per_step_max.max(1));
                self.ha.oversized_at = None;
                true
            }
            Err(ProposeError::TooLarge { bytes, bytes_max }) => {
                self.shrink_step(ctx, bytes, bytes_max);
                false
            }
            Err(_) => false,
        }
    }

    /// A step did not fit one log entry: fewer events next time, then
    /// fewer overdue records; a step of one of each that still does not
    /// fit (a service whose one reconciliation writes more than an entry
    /// holds) is reported, and tried again a tick later.
    fn shrink_step(&mut self, ctx: &mut impl CtxFor<Replica>, bytes: usize, bytes_max: usize) {
        if self.ha.batch_len_max > 1 {
            self.ha.batch_len_max /= 2;
        } else if self.ha.overdue_max > 1 {
            self.ha.overdue_max /= 2;
        } else {
            if self.ha.oversized_at.is_none() {
                ctx.output(ReplicaEvent::HaStepTooLarge { bytes: bytes as u64, bytes_max: bytes_max as u64 });
            }
            self.ha.oversized_at = Some(ctx.now());
        }
    }

    /// A step took effect: the leader sends its commands, if it proposed
    /// the step itself (`entry_term` is its term). A step of an earlier term
    /// that a new leader applies while catching up may be long superseded
    /// (its instance fenced, its singleton moved): its commands are not
    /// sent; the ones still awaited are re-issued by this leader's steps.
    pub(crate) fn ha_applied(&mut self, ctx: &mut impl CtxFor<Replica>, entry_term: u64, applied: HaApplied) {
        let HaApplied::Stepped(step) = applied else { return };
        if !self.ha.push {
            // Agents fetch from the committed graph, of any replica: tell
            // those waiting here that theirs changed, and have the leader
            // tell the followers the commit now, so that the agents waiting
            // there hear of it as soon (not at the next heartbeat).
            let nodes: BTreeSet<NodeId> = step.commands.iter().map(|c| c.node).collect();
            if !nodes.is_empty() {
                ctx.output(ReplicaEvent::CommandsIssued { nodes: nodes.into_iter().collect() });
                self.raft.broadcast_commit();
            }
            return;
        }
        if self.role != Role::Leader || entry_term != self.raft.term() {
            return; // the next leader's level-triggered steps issue them again
        }
        // A node whose lease is already gone may have a new agent session
        // by now, which must not take commands meant for the old one: every
        // instance they concern is fenced once its death is decided.
        let dying = if step.commands.is_empty() { Default::default() } else { self.sm.ha().dying() };
        for command in step.commands.into_iter().filter(|c| !dying.contains(&c.node)) {
            ctx.send(command.node, StationMsg::Agent(command));
        }
    }
}
