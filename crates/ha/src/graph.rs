//! The cluster state graph: nodes, services, instances, the decision log and
//! the counters for fencing tokens and ids.
//!
//! In: `Change`s committed through the replicated log, in log order, and the
//! decisions recorded with them. Out: the graph every station replica holds
//! identically, which the coordinator on the leader reads. Counters only
//! grow, so a token or id is never handed out twice, even after a removal.

use crate::command::{AgentCommand, CommandId};
use crate::coordinator::Step;
use crate::decision::secs;
use crate::decision::{Decision, DecisionLog};
use crate::index::GraphIndex;
use crate::instance::{Instance, InstanceId, InstanceState, Role};
use crate::node::{Lease, Node};
use crate::service::Service;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "GraphRecords")]
pub struct StateGraph {
    pub nodes: BTreeMap<NodeId, Node>,
    pub services: BTreeMap<String, Service>,
    pub instances: BTreeMap<InstanceId, Instance>,
    pub decisions: DecisionLog,
    /// The last fencing token handed out. One counter for all services: each
    /// service's tokens therefore strictly increase, and they keep doing so
    /// when a service is removed and added again under the same name, without
    /// a per-name memory that would grow forever.
    pub token_last: u64,
    pub instance_id_last: u64,
    pub command_id_last: u64,
    /// Derived from the records above and kept with every change; modify
    /// the graph only through `apply`, or the index goes stale.
    #[serde(skip)]
    pub(crate) index: GraphIndex,
}

/// The serialized form: the records without the index, which is rebuilt.
#[derive(Deserialize)]
struct GraphRecords {
    nodes: BTreeMap<NodeId, Node>,
    services: BTreeMap<String, Service>,
    instances: BTreeMap<InstanceId, Instance>,
    decisions: DecisionLog,
    token_last: u64,
    instance_id_last: u64,
    command_id_last: u64,
}

impl From<GraphRecords> for StateGraph {
    fn from(r: GraphRecords) -> StateGraph {
        let mut index = GraphIndex::default();
        r.nodes.values().for_each(|n| index.node(None, Some(n)));
        r.services.iter().for_each(|(name, s)| index.service(name, Some(s)));
        r.instances.values().for_each(|i| index.instance(None, Some(i)));
        StateGraph {
            nodes: r.nodes,
            services: r.services,
            instances: r.instances,
            decisions: r.decisions,
            token_last: r.token_last,
            instance_id_last: r.instance_id_last,
            command_id_last: r.command_id_last,
            index,
        }
    }
}

/// One committed modification of the graph. Values are whole records, so
/// applying a change twice gives the same graph.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    PutNode(Node),
    PutService(Box<Service>),
    RemoveService(String),
    PutInstance(Instance),
    RemoveInstance(InstanceId),
}

/// A broken safety invariant of the graph (a coordinator bug).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("state graph invariant broken: {0}")]
pub struct Violation(pub String);

impl StateGraph {
    pub fn new(decisions_len_max: usize) -> StateGraph {
        StateGraph {
            nodes: BTreeMap::new(),
            services: BTreeMap::new(),
            instances: BTreeMap::new(),
            decisions: DecisionLog::new(decisions_len_max),
            token_last: 0,
            instance_id_last: 0,
            command_id_last: 0,
            index: GraphIndex::default(),
        }
    }

    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::PutNode(node) => self.set_node(node.id, Some(node.clone())),
            Change::PutService(service) => self.set_service(&service.spec.name, Some((**service).clone())),
            Change::RemoveService(name) => self.set_service(name, None),
            Change::PutInstance(instance) => self.put_instance(instance),
            Change::RemoveInstance(id) => self.set_instance(*id, None),
        }
    }

    /// Puts or removes a node's record as it is, index included (a step
    /// undoes its changes with these).
    pub(crate) fn set_node(&mut self, id: NodeId, node: Option<Node>) {
        let old = match node {
            Some(node) => self.nodes.insert(id, node),
            None => self.nodes.remove(&id),
        };
        self.index.node(old.as_ref(), self.nodes.get(&id));
    }

    pub(crate) fn set_service(&mut self, name: &str, service: Option<Service>) {
        match service {
            Some(service) => self.services.insert(name.to_string(), service),
            None => self.services.remove(name),
        };
        self.index.service(name, self.services.get(name));
    }

    pub(crate) fn set_instance(&mut self, id: InstanceId, instance: Option<Instance>) {
        let old = match instance {
            Some(instance) => self.instances.insert(id, instance),
            None => self.instances.remove(&id),
        };
        self.index.instance(old.as_ref(), self.instances.get(&id));
    }

    fn put_instance(&mut self, instance: &Instance) {
        let token_old = self.instances.get(&instance.id).and_then(|old| old.token);
        if let Some(token) = instance.token
            && Some(token) != token_old
        {
            assert!(token > self.token_last, "token {token} handed out again (last was {})", self.token_last);
            self.token_last = token;
        }
        self.instance_id_last = self.instance_id_last.max(instance.id.0);
        if let Some(issued) = &instance.command {
            self.command_id_last = self.command_id_last.max(issued.command.id.0);
        }
        self.set_instance(instance.id, Some(instance.clone()));
    }

    pub fn record(&mut self, decision: Decision) {
        self.decisions.push(decision);
    }

    /// Applies what one step decided, as the station does once it committed.
    pub fn apply_step(&mut self, step: &Step) {
        for change in &step.changes {
            self.apply(change);
        }
        for decision in &step.decisions {
            self.record(decision.clone());
        }
    }

    pub fn instances_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.index.by_service.get(service).into_iter().flatten().map(|id| &self.instances[id])
    }

    pub fn instances_on(&self, node: NodeId) -> impl Iterator<Item = &Instance> + '_ {
        self.index.by_node.get(&node).into_iter().flatten().map(|id| &self.instances[id])
    }

    /// Every command sent and not yet acknowledged, oldest first: what
    /// agents (and proxies for theirs) fetch. Costs what awaits, not the
    /// graph's size.
    pub fn commands_awaited(&self) -> impl Iterator<Item = &AgentCommand> + '_ {
        let awaited = self.index.awaiting.iter().filter_map(|(_, id)| self.instances.get(id));
        awaited.filter_map(|i| i.command.as_ref().map(|issued| &issued.command))
    }

    /// The live instance awaiting `command`, if any.
    pub fn awaiting(&self, command: CommandId) -> Option<&Instance> {
        let instance = self.instances.get(self.index.by_command.get(&command)?)?;
        (!instance.is_terminal() && instance.awaits(command)).then_some(instance)
    }

    /// The safety invariants that must hold after every step at `now_ms`,
    /// over the whole graph.
    pub fn check(&self, now_ms: u64) -> Result<(), Violation> {
        for service in self.services.values() {
            self.check_service(service.name())?;
        }
        for instance in self.instances.values().filter(|i| i.holds()) {
            self.check_instance(instance, now_ms)?;
        }
        Ok(())
    }

    /// The same invariants over what a step touched: these services, these
    /// instances and every instance on these nodes. Holds for the whole
    /// graph if it held before the step, since nothing else changed.
    pub fn check_touched(
        &self,
        now_ms: u64,
        services: &BTreeSet<String>,
        instances: &BTreeSet<InstanceId>,
        nodes: &BTreeSet<NodeId>,
    ) -> Result<(), Violation> {
        for name in services {
            self.check_service(name)?;
        }
        let on_nodes = nodes.iter().flat_map(|n| self.instances_on(*n));
        for instance in instances.iter().filter_map(|id| self.instances.get(id)).chain(on_nodes) {
            self.check_service(&instance.service)?;
            if instance.holds() {
                self.check_instance(instance, now_ms)?;
            }
        }
        Ok(())
    }

    fn check_service(&self, name: &str) -> Result<(), Violation> {
        if !self.services.get(name).is_some_and(|s| s.spec.is_singleton()) {
            return Ok(());
        }
        let holders: Vec<&Instance> = self.instances_of(name).filter(|i| i.is_primary() && i.holds()).collect();
        if holders.len() > 1 {
            let list: Vec<String> = holders.iter().map(|i| i.to_string()).collect();
            let n = holders.len();
            return Err(Violation(format!("singleton {name} has {n} primaries: {}", list.join(", "))));
        }
        Ok(())
    }

    fn check_instance(&self, instance: &Instance, now_ms: u64) -> Result<(), Violation> {
        let Some(node) = self.nodes.get(&instance.node) else {
            return Err(Violation(format!("{instance} is on an unknown node")));
        };
        if !node.is_alive(now_ms) {
            return Err(Violation(format!("{instance} holds on {} whose lease expired", node.id)));
        }
        let serving =
            matches!(instance.state, InstanceState::Pending | InstanceState::Starting | InstanceState::Active);
        if instance.role == Role::Primary && serving && instance.token.is_none() {
            return Err(Violation(format!("{instance} serves without a fencing token")));
        }
        if let Some(issued) = instance.command.as_ref().filter(|c| c.command.session != node.session) {
            let session = issued.command.session;
            return Err(Violation(format!("{instance} awaits a command of {}'s ended session {session}", node.id)));
        }
        if instance.token.is_some_and(|t| t > self.token_last) {
            return Err(Violation(format!("{instance} has a token above the last handed out")));
        }
        Ok(())
    }
}

impl fmt::Display for Change {
    /// `put i3 db@n2 primary pending token 7 awaiting c4`, `remove i3`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::PutNode(node) => {
                match node.lease {
                    Lease::Alive { expires_at_ms } => write!(f, "put {} alive until {}", node.id, secs(expires_at_ms))?,
                    Lease::Expired { at_ms, cause } => {
                        write!(f, "put {} dead at {} ({cause:?})", node.id, secs(at_ms))?
                    }
                }
                if node.drained {
                    f.write_str(" drained")?;
                }
                Ok(())
            }
            Change::PutService(service) => write!(f, "put service {}", service.name()),
            Change::RemoveService(name) => write!(f, "remove service {name}"),
            Change::PutInstance(instance) => {
                write!(f, "put {instance}")?;
                if let Some(issued) = &instance.command {
                    write!(f, " awaiting {}", issued.command.id)?;
                }
                Ok(())
            }
            Change::RemoveInstance(id) => write!(f, "remove {id}"),
        }
    }
}
