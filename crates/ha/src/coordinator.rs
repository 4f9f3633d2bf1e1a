//! The coordinator: a pure function from (state graph, one input) to the
//! changes to commit, the commands to send once they are committed, and the
//! decisions with their reasons.
//!
//! In: the committed graph, a batch of events (or a tick) with the leader's
//! time, the configuration. Out: a `Step`. The station commits `changes`
//! (and `decisions`) through its log, applies them with
//! `StateGraph::apply_step`, and only then sends `commands`; so a new
//! leader running `step` on the same graph carries on exactly.
//!
//! Level-triggered, at the cost of what changed: every service a change
//! touches (its instances, its nodes) is reconciled against its desired
//! state, and so are, on every step, the services whose desired state can
//! move without their own records changing (see `index.rs`); timed rules
//! (lease expiry, start timeouts, re-issue of unacknowledged commands after
//! `command_retry_ms`, collection) read the graph's indexes; the last three
//! act on at most `overdue_per_step_max` records per step, so that a step
//! always fits one log entry (lease expiry is bounded by the events: at
//! the station, a node's death arrives as a queued `LeaseExpired`). A lost
//! command is simply issued again. Debug builds reconcile every service
//! once more after each step and assert that it changes nothing.
//!
//! Order within a step: expiry of leases that lapsed before now (first, so
//! that nothing acts on a node that is already dead, and a renewal that
//! arrives too late does not rescue instances its agent has already
//! killed); each event with the services it touched; start timeouts;
//! reconciliation; re-issue; collection; proxy assignment. At the end the
//! graph's safety invariants are asserted on what the step touched, and the
//! graph is put back as it was (the step is computed in place, not on a
//! copy).

use crate::command::{Action, AgentCommand, CommandId, Issued};
use crate::config::CoordinatorConfig;
use crate::decision::Decision;
use crate::graph::{Change, StateGraph};
use crate::input::{Event, Input};
use crate::instance::{Instance, InstanceId};
use crate::node::Node;
use crate::service::Service;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Reconciliation rounds per step at most: the longest chain of services
/// following one another that one step settles.
const RECONCILE_ROUNDS_MAX: usize = 8;

/// What one step decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub changes: Vec<Change>,
    pub commands: Vec<AgentCommand>,
    pub decisions: Vec<Decision>,
}

/// Runs the coordinator once on a copy of `graph` (tests and tools; the
/// station uses [`step_batch`], which does not copy the graph).
pub fn step(graph: &StateGraph, input: &Input, config: &CoordinatorConfig) -> Step {
    let mut g = graph.clone();
    step_batch(&mut g, input.now_ms, std::slice::from_ref(&input.event), config)
}

/// Runs the coordinator over `events` in order, as one step at `now_ms`,
/// and leaves `graph` exactly as it found it. Never panics on any input;
/// panics only if its own safety invariants break (a bug).
///
/// Lease expiry runs first; then each event is handled and the services it
/// touched reconciled before the next, so every decision names the event
/// that caused it; the last event's services are reconciled after the
/// start timeouts, with the watched services (see `index.rs`), as a single
/// step always did; then re-issue and collection, once per batch.
pub fn step_batch(graph: &mut StateGraph, now_ms: u64, events: &[Event], config: &CoordinatorConfig) -> Step {
    let mut stepper = Stepper::new(graph, now_ms, config);
    stepper.expire_leases();
    let tick = [Event::Tick];
    let events = if events.is_empty() { &tick[..] } else { events };
    for (k, event) in events.iter().enumerate() {
        stepper.cause = event.to_string();
        stepper.handle_event(event);
        if k + 1 < events.len() {
            stepper.reconcile_dirty();
        }
    }
    stepper.time_out_starts();
    stepper.mark_watched();
    stepper.reconcile_dirty();
    stepper.cause = cause_of_batch(events);
    stepper.retry_commands();
    stepper.collect_terminal();
    stepper.assign_proxies();
    stepper.finish()
}

fn cause_of_batch(events: &[Event]) -> String {
    match events {
        [] => Event::Tick.to_string(),
        [one] => one.to_string(),
        [first, ..] => format!("{first} and {} more events", events.len() - 1),
    }
}

/// How a record looked before a step changed it.
enum Undo {
    Node(NodeId, Option<Node>),
    Service(String, Option<Box<Service>>),
    Instance(InstanceId, Option<Instance>),
}

/// The state of one step: the graph with every change applied as it is
/// made, so later rules see earlier ones, and what undoes them at the end.
pub(crate) struct Stepper<'s> {
    pub(crate) g: &'s mut StateGraph,
    pub(crate) config: &'s CoordinatorConfig,
    pub(crate) now_ms: u64,
    cause: String,
    token_last: u64,
    instance_id_last: u64,
    command_id_last: u64,
    counters_before: (u64, u64, u64),
    undo: Vec<Undo>,
    /// Services to reconcile before the step ends.
    dirty: BTreeSet<String>,
    touched_services: BTreeSet<String>,
    touched_instances: BTreeSet<InstanceId>,
    touched_nodes: BTreeSet<NodeId>,
    out: Step,
}

impl<'s> Stepper<'s> {
    fn new(graph: &'s mut StateGraph, now_ms: u64, config: &'s CoordinatorConfig) -> Stepper<'s> {
        let counters = (graph.token_last, graph.instance_id_last, graph.command_id_last);
        Stepper {
            g: graph,
            config,
            now_ms,
            cause: Event::Tick.to_string(),
            token_last: counters.0,
            instance_id_last: counters.1,
            command_id_last: counters.2,
            counters_before: counters,
            undo: Vec::new(),
            dirty: BTreeSet::new(),
            touched_services: BTreeSet::new(),
            touched_instances: BTreeSet::new(),
            touched_nodes: BTreeSet::new(),
            out: Step::default(),
        }
    }

    /// Reconciles the services marked since the last call, in rounds: what
    /// one round changes marks services for the next, and a round that
    /// changed anything marks the watched services again, since a service
    /// that follows another (start order, colocation) may have been
    /// reconciled before the one it follows changed (the invariants
    /// proptest found `app`, waiting for `db`, reconciled ahead of `db`).
    /// Reconciling is idempotent, so the rounds end once nothing changes;
    /// `RECONCILE_ROUNDS_MAX` bounds a chain of followers.
    pub(crate) fn reconcile_dirty(&mut self) {
        for _ in 0..RECONCILE_ROUNDS_MAX {
            let round = std::mem::take(&mut self.dirty);
            if round.is_empty() {
                return;
            }
            let changes = self.out.changes.len();
            for name in round {
                self.reconcile(&name);
            }
            if self.out.changes.len() > changes {
                self.mark_watched();
            }
        }
    }

    /// Services reconciled on every step whatever changed.
    fn mark_watched(&mut self) {
        let watched: Vec<String> = self.g.index.watched.iter().cloned().collect();
        self.dirty.extend(watched);
    }

    /// What a change touches: its records for the invariant check, and the
    /// services whose desired state it may affect for reconciliation.
    fn touch(&mut self, change: &Change) {
        match change {
            Change::PutNode(node) => {
                self.touched_nodes.insert(node.id);
                let here: Vec<String> = self.g.instances_on(node.id).map(|i| i.service.clone()).collect();
                self.dirty.extend(here);
                let every_node = self.g.index.watched.iter().filter(|s| {
                    self.g.services.get(*s).is_some_and(|s| matches!(s.spec.kind, crate::spec::ServiceKind::EveryNode))
                });
                let every_node: Vec<String> = every_node.cloned().collect();
                self.dirty.extend(every_node);
            }
            Change::PutService(service) => {
                self.touched_services.insert(service.spec.name.clone());
                self.dirty.insert(service.spec.name.clone());
            }
            Change::RemoveService(name) => {
                self.touched_services.insert(name.clone());
            }
            Change::PutInstance(instance) => {
                self.touched_instances.insert(instance.id);
                self.dirty.insert(instance.service.clone());
            }
            Change::RemoveInstance(id) => {
                self.touched_instances.insert(*id);
                if let Some(old) = self.g.instances.get(id) {
                    self.dirty.insert(old.service.clone());
                }
            }
        }
    }

    fn remember(&mut self, change: &Change) {
        let undo = match change {
            Change::PutNode(node) => Undo::Node(node.id, self.g.nodes.get(&node.id).cloned()),
            Change::PutService(service) => {
                let name = service.spec.name.clone();
                let old = self.g.services.get(&name).cloned().map(Box::new);
                Undo::Service(name, old)
            }
            Change::RemoveService(name) => {
                Undo::Service(name.clone(), self.g.services.get(name).cloned().map(Box::new))
            }
            Change::PutInstance(instance) => Undo::Instance(instance.id, self.g.instances.get(&instance.id).cloned()),
            Change::RemoveInstance(id) => Undo::Instance(*id, self.g.instances.get(id).cloned()),
        };
        self.undo.push(undo);
    }

    /// Puts the graph back as the step found it.
    fn roll_back(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Node(id, old) => self.g.set_node(id, old),
                Undo::Service(name, old) => self.g.set_service(&name, old.map(|s| *s)),
                Undo::Instance(id, old) => self.g.set_instance(id, old),
            }
        }
        (self.g.token_last, self.g.instance_id_last, self.g.command_id_last) = self.counters_before;
    }

    pub(crate) fn change(&mut self, change: Change) {
        self.remember(&change);
        self.touch(&change);
        self.g.apply(&change);
        self.out.changes.push(change);
    }

    pub(crate) fn put(&mut self, instance: Instance) {
        self.change(Change::PutInstance(instance));
    }

    pub(crate) fn put_service(&mut self, service: Service) {
        self.change(Change::PutService(Box::new(service)));
    }

    pub(crate) fn decide(&mut self, service: Option<&str>, text: String) {
        let decision =
            Decision { at_ms: self.now_ms, service: service.map(str::to_string), text, cause: self.cause.clone() };
        self.out.decisions.push(decision);
    }

    /// A fencing token strictly greater than every earlier one.
    pub(crate) fn take_token(&mut self) -> u64 {
        self.token_last = self.token_last.checked_add(1).expect("fencing tokens exhausted");
        assert!(self.token_last > self.counters_before.0, "a fresh token must exceed every committed one");
        self.token_last
    }

    pub(crate) fn take_instance_id(&mut self) -> InstanceId {
        self.instance_id_last += 1;
        InstanceId(self.instance_id_last)
    }

    /// Sends `action` to the instance's node and records it as awaited on
    /// the instance (the caller puts the instance).
    pub(crate) fn issue(&mut self, instance: &mut Instance, action: Action) {
        let node = self.g.nodes.get(&instance.node).filter(|n| n.is_alive(self.now_ms));
        let Some(session) = node.map(|n| n.session) else {
            panic!("command for {instance} on a node that is not alive")
        };
        self.command_id_last += 1;
        let id = CommandId(self.command_id_last);
        let command = AgentCommand { id, node: instance.node, session, instance: instance.id, action };
        if let Some(token) = command.token() {
            let older = self.out.commands.iter().filter(|c| c.service() == command.service()).filter_map(|c| c.token());
            assert!(older.max().is_none_or(|t| t < token), "tokens of one service must grow within a step");
        }
        self.out.commands.push(command.clone());
        instance.command = Some(Issued { command, issued_at_ms: self.now_ms });
    }

    /// Sends an awaited command again, unchanged.
    pub(crate) fn reissue(&mut self, mut instance: Instance) {
        let Some(issued) = instance.command.as_mut() else { return };
        issued.issued_at_ms = self.now_ms;
        self.out.commands.push(issued.command.clone());
        self.put(instance);
    }

    /// Checks the invariants on what the step touched (the whole graph in
    /// debug builds, where reconciling every service once more must also
    /// change nothing: the dirty marking missed no service), then undoes
    /// the step's changes.
    fn finish(mut self) -> Step {
        let touched =
            self.g.check_touched(self.now_ms, &self.touched_services, &self.touched_instances, &self.touched_nodes);
        if let Err(violation) = touched {
            panic!("{violation} after {}", self.cause);
        }
        if cfg!(debug_assertions) {
            self.verify_complete();
        }
        self.roll_back();
        self.out
    }

    fn verify_complete(&mut self) {
        if let Err(violation) = self.g.check(self.now_ms) {
            panic!("{violation} after {}", self.cause);
        }
        let changes = self.out.changes.len();
        let names: Vec<String> = self.g.services.keys().cloned().collect();
        for name in names {
            self.reconcile(&name);
            let late = &self.out.changes[changes..];
            assert!(late.is_empty(), "{name} needed reconciling but was not marked: {:?}", late.first());
        }
    }
}
