//! The coordinator: a pure function from (state graph, one input) to the
//! changes to commit, the commands to send once they are committed, and the
//! decisions with their reasons.
//!
//! In: the committed graph, an event or a tick with the leader's time, the
//! configuration. Out: a `Step`. The station commits `changes` (and
//! `decisions`) through its log, applies them with `StateGraph::apply_step`,
//! and only then sends `commands`; so a new leader running `step` on the
//! same graph carries on exactly. Level-triggered: every input, tick or
//! event, runs the whole reconciliation of desired against observed state,
//! so a lost command is simply issued again (`command_retry_ms` later).
//!
//! Order within a step: expiry of leases that lapsed before now (first, so
//! that nothing acts on a node that is already dead, and a renewal that
//! arrives too late does not rescue instances its agent has already killed);
//! the event itself; start timeouts; reconciliation of every service; re-issue of unacknowledged
//! commands; collection of old failed and fenced instances. At the end the
//! graph's safety invariants are asserted.

use crate::command::{Action, AgentCommand, CommandId, Issued};
use crate::config::CoordinatorConfig;
use crate::decision::Decision;
use crate::graph::{Change, StateGraph};
use crate::input::Input;
use crate::instance::{Instance, InstanceId};
use crate::service::Service;
use serde::{Deserialize, Serialize};

/// What one step decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub changes: Vec<Change>,
    pub commands: Vec<AgentCommand>,
    pub decisions: Vec<Decision>,
}

/// Runs the coordinator once. Never panics on any input; panics only if its
/// own safety invariants break (a bug).
pub fn step(graph: &StateGraph, input: &Input, config: &CoordinatorConfig) -> Step {
    let mut stepper = Stepper::new(graph, input, config);
    stepper.expire_leases();
    stepper.handle_event(&input.event);
    stepper.time_out_starts();
    stepper.reconcile_all();
    stepper.retry_commands();
    stepper.collect_terminal();
    stepper.assign_proxies();
    stepper.finish()
}

/// The state of one step: a working copy of the graph with every change
/// applied as it is made, so later rules see earlier ones.
pub(crate) struct Stepper<'c> {
    pub(crate) g: StateGraph,
    pub(crate) config: &'c CoordinatorConfig,
    pub(crate) now_ms: u64,
    cause: String,
    token_last: u64,
    instance_id_last: u64,
    command_id_last: u64,
    out: Step,
}

impl<'c> Stepper<'c> {
    fn new(graph: &StateGraph, input: &Input, config: &'c CoordinatorConfig) -> Stepper<'c> {
        Stepper {
            g: graph.clone(),
            config,
            now_ms: input.now_ms,
            cause: input.event.to_string(),
            token_last: graph.token_last,
            instance_id_last: graph.instance_id_last,
            command_id_last: graph.command_id_last,
            out: Step::default(),
        }
    }

    pub(crate) fn change(&mut self, change: Change) {
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
        assert!(self.token_last > self.g.token_last, "a fresh token must exceed every committed one");
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

    fn finish(self) -> Step {
        if let Err(violation) = self.g.check(self.now_ms) {
            panic!("{violation} after {}", self.cause);
        }
        self.out
    }
}
