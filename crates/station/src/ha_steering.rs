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
//! Cluster time: each step carries the leader's time in milliseconds. A
//! new leader's clock is another machine's, so the leader adds an offset
//! fixed when it takes office that makes its time continue from the last
//! committed step's: time in the graph never goes back.

use crate::command::Command;
use crate::ha_state::HaApplied;
use crate::msg::{HaReport, StationMsg};
use crate::replica::Replica;
use crate::running::Running;
use haven_ha::{CoordinatorConfig, step};
use haven_raft::{Role, StateMachine as _};
use haven_runtime::{CtxFor, Instant};
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
}

impl HaSteering {
    pub(crate) fn new(config: CoordinatorConfig, tick_interval: Duration) -> HaSteering {
        HaSteering { config, tick_interval, step_at: None, ticked_at: None, offset_ms: None }
    }
}

fn ms(at: Instant) -> u64 {
    at.as_nanos() / 1_000_000
}

impl Running {
    /// A report from an agent or the operator, for the queue.
    pub(crate) fn propose_report(&mut self, report: HaReport) {
        let command = match report {
            HaReport::Event(event) => Command::HaEvent { event },
            HaReport::Join { node, address, labels, lease } => Command::HaJoin { node, address, labels, lease },
        };
        // Not the leader, or busy: dropped; the sender repeats it.
        let _ = self.raft.propose(&command.encode());
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
    pub(crate) fn steer_ha(&mut self, now: Instant) -> bool {
        if self.role != Role::Leader {
            self.ha.offset_ms = None;
            self.ha.step_at = None;
            return false;
        }
        if self.ha.step_at.is_some_and(|index| index > self.sm.applied_index()) {
            return false;
        }
        self.ha.step_at = None;
        let state = self.sm.ha();
        let tick_due = self.ha.ticked_at.is_none_or(|at| now.saturating_since(at) >= self.ha.tick_interval);
        if state.front().is_none() && (!tick_due || state.graph.services.is_empty() && state.graph.nodes.is_empty()) {
            return false;
        }
        let now_ms = self.cluster_ms(now);
        let state = self.sm.ha();
        let (consumed, input) = state.next_input(now_ms);
        if consumed.is_none() {
            self.ha.ticked_at = Some(now);
        }
        let decided = step(&state.graph, &input, &self.ha.config);
        if consumed.is_none() && decided.changes.is_empty() && decided.decisions.is_empty() {
            return false;
        }
        let command = Command::HaStep { version: state.version(), consumed, now_ms, step: decided };
        self.ha.step_at = self.raft.propose(&command.encode()).ok();
        self.ha.step_at.is_some()
    }

    /// A step took effect: the leader sends its commands.
    pub(crate) fn ha_applied(&mut self, ctx: &mut impl CtxFor<Replica>, applied: HaApplied) {
        let HaApplied::Stepped(step) = applied else { return };
        if self.role != Role::Leader {
            return; // the next leader's level-triggered steps issue them again
        }
        for command in step.commands {
            ctx.send(command.node, StationMsg::Agent(command));
        }
    }
}
