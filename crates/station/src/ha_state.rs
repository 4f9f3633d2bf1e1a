//! The high-availability part of the replicated state: the state graph and
//! the event queue.
//!
//! In: committed HA commands in log order — an agent's or operator's event
//! (appended to the queue), a node joining with the store lease that keeps
//! it alive, the expiry of such a lease (from the store's lessor, through
//! the log), and the coordinator's step (the graph changes it decided, with
//! the event it consumed). Out: the graph every replica holds identically,
//! the queue the leader's coordinator works through, and for each applied
//! step whether it took effect.
//!
//! An event leaves the queue only with the step that decided about it, in
//! the same entry (a step decides about the oldest events, up to
//! [`STEP_EVENTS_LEN_MAX`] of them, and names the last one it consumed): a leader that dies after deciding but before committing
//! leaves the event queued for the next leader, and one that dies after
//! committing leaves nothing to redo (the coordinator is level-triggered,
//! so commands it had not sent yet are sent again on a later tick).
//!
//! A step carries the graph version it was computed on. Only the leader
//! proposes steps, one at a time, but a deposed leader's step may still
//! commit after a new leader's: a step computed on an older graph is
//! refused (`Applied::Stale`), so every applied step saw exactly the graph
//! it changes.

use crate::msg::HaReport;
use crate::node_leases::NodeLeases;
use haven_ha::{CoordinatorConfig, Event, Input, InstanceState, StateGraph, Step, step_batch};
use haven_runtime::NodeId;
use haven_store::LeaseId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Events waiting for the coordinator; more are refused, and the agents retry.
pub const QUEUE_LEN_MAX: usize = 10_000;
/// Decisions the graph keeps for `haven events`.
pub const DECISIONS_LEN_MAX: usize = 1_000;
/// Queued events one step decides about at most: 100 simultaneous lease
/// expiries, or a burst of agents' reports, are one commit, not a queue
/// of commit round trips.
pub const STEP_EVENTS_LEN_MAX: usize = 256;

/// One queued event: its id in the queue and the time it was committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub id: u64,
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaState {
    pub graph: StateGraph,
    queue: VecDeque<Queued>,
    next_event_id: u64,
    /// Steps applied so far: the version a new step must be computed on.
    version: u64,
    /// The store lease that keeps each node alive.
    node_leases: NodeLeases,
    /// The latest cluster time a step committed, so a new leader's clock
    /// (another machine's) continues from it instead of going back.
    time_ms_last: u64,
}

/// What applying one HA command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaApplied {
    /// The event is queued under this id.
    Queued(u64),
    /// The queue is full; the event was dropped (its sender retries).
    QueueFull,
    /// The step took effect: these commands may now be sent.
    Stepped(Step),
    /// The step was computed on an older graph and changed nothing.
    Stale,
}

impl Default for HaState {
    fn default() -> HaState {
        HaState {
            graph: StateGraph::new(DECISIONS_LEN_MAX),
            queue: VecDeque::new(),
            next_event_id: 1,
            version: 0,
            node_leases: NodeLeases::default(),
            time_ms_last: 0,
        }
    }
}

impl HaState {
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn time_ms_last(&self) -> u64 {
        self.time_ms_last
    }

    /// The oldest event the coordinator has not decided about.
    pub fn front(&self) -> Option<&Queued> {
        self.queue.front()
    }

    /// Nodes whose death (`LeaseExpired`) is queued but not yet decided
    /// about: their lease is gone, so every instance they hold is about to
    /// be fenced.
    pub fn dying(&self) -> BTreeSet<NodeId> {
        let deaths = self.queue.iter().filter_map(|q| match &q.event {
            Event::LeaseExpired { node } => Some(*node),
            _ => None,
        });
        deaths.collect()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn enqueue(&mut self, event: Event) -> HaApplied {
        if self.queue.len() >= QUEUE_LEN_MAX {
            return HaApplied::QueueFull;
        }
        let id = self.next_event_id;
        self.next_event_id += 1;
        self.queue.push_back(Queued { id, event });
        HaApplied::Queued(id)
    }

    /// A node (re)joins, alive for as long as store lease `lease` lives.
    pub fn join(
        &mut self,
        node: NodeId,
        address: String,
        labels: BTreeMap<String, String>,
        lease: LeaseId,
    ) -> HaApplied {
        self.node_leases.join(node, lease);
        // The lease's expiry comes through the log; until then the node lives.
        self.enqueue(Event::NodeJoined { node, address, labels, lease_expires_at_ms: u64::MAX, session: lease })
    }

    /// The store revoked `lease` (expired, or its holder revoked it): the
    /// node it kept alive is dead; the coordinator hears so in log order.
    pub fn lease_gone(&mut self, lease: LeaseId) -> Option<HaApplied> {
        let node = self.node_leases.gone(lease)?;
        Some(self.enqueue(Event::LeaseExpired { node }))
    }

    /// Applies the coordinator's step if it was computed on this graph.
    /// `consumed` is the id of the last event it decided about: every
    /// queued event up to it leaves the queue.
    pub fn apply_step(&mut self, version: u64, consumed: Option<u64>, now_ms: u64, step: Step) -> HaApplied {
        if version != self.version {
            return HaApplied::Stale;
        }
        if let Some(last) = consumed {
            let front = self.queue.front().map(|q| q.id);
            assert!(
                front.is_some_and(|id| id <= last),
                "a step consumes the queue's oldest events ({front:?}, {last})"
            );
            while self.queue.front().is_some_and(|q| q.id <= last) {
                self.queue.pop_front();
            }
        }
        self.graph.apply_step(&step);
        self.version += 1;
        self.time_ms_last = self.time_ms_last.max(now_ms);
        HaApplied::Stepped(step)
    }

    /// Whether `report` says only what the graph already shows: an
    /// instance active with this token, awaiting no command. Deciding
    /// about it would change nothing (the coordinator ignores it), so the
    /// leader need not queue it.
    pub fn already_known(&self, report: &HaReport) -> bool {
        let HaReport::Event(Event::InstanceActive { instance, token }) = report else { return false };
        self.graph
            .instances
            .get(instance)
            .is_some_and(|i| i.token == *token && i.state == InstanceState::Active && i.command.is_none())
    }

    /// The coordinator's step for the oldest `len_max` events (a tick when
    /// none is queued), computed on the graph in place (the graph is left
    /// as it was): the id of the last event consumed, and the step.
    pub fn decide(&mut self, now_ms: u64, len_max: usize, config: &CoordinatorConfig) -> (Option<u64>, Step) {
        let batch: Vec<Event> = self.queue.iter().take(len_max.max(1)).map(|q| q.event.clone()).collect();
        let consumed = batch.len().checked_sub(1).and_then(|last| self.queue.get(last)).map(|q| q.id);
        (consumed, step_batch(&mut self.graph, now_ms, &batch, config))
    }

    /// The coordinator's input for the queue's oldest event, or a tick.
    pub fn next_input(&self, now_ms: u64) -> (Option<u64>, Input) {
        match self.queue.front() {
            Some(q) => (Some(q.id), Input { now_ms, event: q.event.clone() }),
            None => (None, Input { now_ms, event: Event::Tick }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haven_ha::{CoordinatorConfig, step};

    fn joined(state: &mut HaState, node: u64, lease: LeaseId) {
        assert_eq!(state.join(NodeId(node), format!("10.0.0.{node}"), BTreeMap::new(), lease), HaApplied::Queued(1));
    }

    #[test]
    fn an_event_leaves_the_queue_only_with_the_step_that_decided_it() {
        let mut state = HaState::default();
        joined(&mut state, 1, 7);
        let (consumed, input) = state.next_input(100);
        assert_eq!(consumed, Some(1));
        let decided = step(&state.graph, &input, &CoordinatorConfig::default());
        assert_eq!(state.queue_len(), 1, "deciding alone removes nothing");
        assert!(matches!(state.apply_step(0, consumed, 100, decided), HaApplied::Stepped(_)));
        assert_eq!(state.queue_len(), 0);
        assert!(state.graph.nodes.contains_key(&NodeId(1)));
        assert_eq!((state.version(), state.time_ms_last()), (1, 100));
    }

    #[test]
    fn a_step_computed_on_an_older_graph_changes_nothing() {
        let mut state = HaState::default();
        joined(&mut state, 1, 7);
        let (consumed, input) = state.next_input(100);
        let first = step(&state.graph, &input, &CoordinatorConfig::default());
        let deposed = first.clone();
        assert!(matches!(state.apply_step(0, consumed, 100, first), HaApplied::Stepped(_)));
        let before = state.clone();
        assert_eq!(state.apply_step(0, consumed, 150, deposed), HaApplied::Stale);
        assert_eq!(state, before);
    }

    #[test]
    fn the_expiry_of_a_nodes_lease_queues_its_death_once() {
        let mut state = HaState::default();
        joined(&mut state, 3, 9);
        assert_eq!(state.lease_gone(8), None, "not a node's lease");
        assert_eq!(state.lease_gone(9), Some(HaApplied::Queued(2)));
        assert_eq!(
            state.front().map(|q| &q.event),
            Some(&Event::NodeJoined {
                node: NodeId(3),
                address: "10.0.0.3".into(),
                labels: BTreeMap::new(),
                lease_expires_at_ms: u64::MAX,
                session: 9
            })
        );
        assert_eq!(state.lease_gone(9), None, "once");
    }

    #[test]
    fn a_node_is_dying_from_its_leases_expiry_until_the_step_that_decides_it() {
        let mut state = HaState::default();
        joined(&mut state, 3, 9);
        assert!(state.dying().is_empty());
        state.lease_gone(9);
        assert_eq!(state.dying(), BTreeSet::from([NodeId(3)]));
        for _ in 0..2 {
            let (consumed, input) = state.next_input(100);
            let decided = step(&state.graph, &input, &CoordinatorConfig::default());
            let version = state.version();
            assert!(matches!(state.apply_step(version, consumed, 100, decided), HaApplied::Stepped(_)));
        }
        assert!(state.dying().is_empty(), "decided: no longer dying");
    }

    #[test]
    fn a_step_decides_a_batch_of_the_oldest_events_and_they_leave_together() {
        let mut state = HaState::default();
        for node in 1..=5 {
            assert!(matches!(
                state.join(NodeId(node), format!("n{node}"), BTreeMap::new(), node as i64),
                HaApplied::Queued(_)
            ));
        }
        let before = state.graph.clone();
        let (consumed, decided) = state.decide(100, 3, &CoordinatorConfig::default());
        assert_eq!(consumed, Some(3));
        assert_eq!(state.graph, before, "deciding leaves the graph as it was");
        let joined: Vec<String> = decided.decisions.iter().map(|d| format!("{} ({})", d.text, d.cause)).collect();
        assert_eq!(
            joined,
            ["n1 joined at n1 (n1 joined)", "n2 joined at n2 (n2 joined)", "n3 joined at n3 (n3 joined)"]
        );
        assert!(matches!(state.apply_step(0, consumed, 100, decided), HaApplied::Stepped(_)));
        assert_eq!((state.queue_len(), state.front().map(|q| q.id)), (2, Some(4)));
        assert_eq!(state.graph.nodes.len(), 3);
    }

    #[test]
    fn a_full_queue_refuses() {
        let mut state = HaState::default();
        for _ in 0..QUEUE_LEN_MAX {
            assert!(matches!(state.enqueue(Event::Tick), HaApplied::Queued(_)));
        }
        assert_eq!(state.enqueue(Event::Tick), HaApplied::QueueFull);
    }
}
