//! The state graph's indexes: what the coordinator looks up on every step,
//! kept up to date as changes are applied so that a step costs what it
//! touches, not the size of the graph.
//!
//! In: every put and removal of a node, service or instance, with the old
//! and the new record. Out: instances by service, by node and by awaited
//! command, and by when that command was sent; nodes by lease end and by
//! load (instances holding a slot); instances in flight (pending, starting
//! or awaiting a command); terminal instances by age; services that must be
//! reconciled on every step ([`needs_watching`]). Never serialized: rebuilt
//! from the records.

use crate::command::CommandId;
use crate::instance::{Instance, InstanceId, InstanceState};
use crate::node::{Lease, Node};
use crate::service::Service;
use crate::spec::ServiceKind;
use haven_runtime::NodeId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GraphIndex {
    pub(crate) by_service: BTreeMap<String, BTreeSet<InstanceId>>,
    pub(crate) by_node: BTreeMap<NodeId, BTreeSet<InstanceId>>,
    pub(crate) by_command: BTreeMap<CommandId, InstanceId>,
    /// Alive nodes by the end of their lease.
    pub(crate) lease_ends: BTreeSet<(u64, NodeId)>,
    /// Every node by the number of instances holding a slot on it.
    pub(crate) loads: BTreeSet<(u32, NodeId)>,
    load_of: BTreeMap<NodeId, u32>,
    /// Pending or starting, or awaiting a command.
    pub(crate) in_flight: BTreeSet<InstanceId>,
    /// Awaiting a command, by the time it was (last) sent.
    pub(crate) awaiting: BTreeSet<(u64, InstanceId)>,
    /// Failed or fenced, by the time they became so.
    pub(crate) terminal: BTreeSet<(u64, InstanceId)>,
    /// Services reconciled on every step (see [`needs_watching`]).
    pub(crate) watched: BTreeSet<String>,
}

/// A service whose desired state may change without any of its own
/// records changing: it follows another service (colocation, start
/// order), runs on every node, waits for placement to become possible, is
/// being moved, or winds down.
pub(crate) fn needs_watching(service: &Service) -> bool {
    let placement = &service.spec.placement;
    matches!(service.spec.kind, ServiceKind::EveryNode)
        || placement.colocate_with.is_some()
        || !placement.start_after.is_empty()
        || service.blocked.is_some()
        || service.move_to.is_some()
        || !service.wants_instances()
}

fn in_flight(i: &Instance) -> bool {
    matches!(i.state, InstanceState::Pending | InstanceState::Starting) || i.command.is_some()
}

impl GraphIndex {
    pub(crate) fn node(&mut self, old: Option<&Node>, new: Option<&Node>) {
        if let Some(Node { id, lease: Lease::Alive { expires_at_ms }, .. }) = old {
            self.lease_ends.remove(&(*expires_at_ms, *id));
        }
        if let Some(Node { id, lease: Lease::Alive { expires_at_ms }, .. }) = new {
            self.lease_ends.insert((*expires_at_ms, *id));
        }
        match (old, new) {
            (None, Some(node)) => self.node_added(node.id),
            (Some(node), None) => {
                let load = self.load_of.remove(&node.id).unwrap_or(0);
                self.loads.remove(&(load, node.id));
            }
            _ => {}
        }
    }

    pub(crate) fn service(&mut self, name: &str, new: Option<&Service>) {
        match new.filter(|s| needs_watching(s)) {
            Some(_) => self.watched.insert(name.to_string()),
            None => self.watched.remove(name),
        };
    }

    pub(crate) fn instance(&mut self, old: Option<&Instance>, new: Option<&Instance>) {
        if let Some(i) = old {
            self.unlink(i);
        }
        if let Some(i) = new {
            self.link(i);
        }
    }

    fn link(&mut self, i: &Instance) {
        self.by_service.entry(i.service.clone()).or_default().insert(i.id);
        self.by_node.entry(i.node).or_default().insert(i.id);
        if let Some(issued) = &i.command {
            self.by_command.insert(issued.command.id, i.id);
            self.awaiting.insert((issued.issued_at_ms, i.id));
        }
        if in_flight(i) {
            self.in_flight.insert(i.id);
        }
        if i.is_terminal() {
            self.terminal.insert((i.since_ms, i.id));
        }
        if i.holds() {
            self.add_load(i.node, 1);
        }
    }

    fn unlink(&mut self, i: &Instance) {
        remove_from(&mut self.by_service, &i.service, i.id);
        remove_from(&mut self.by_node, &i.node, i.id);
        if let Some(issued) = &i.command {
            self.by_command.remove(&issued.command.id);
            self.awaiting.remove(&(issued.issued_at_ms, i.id));
        }
        self.in_flight.remove(&i.id);
        self.terminal.remove(&(i.since_ms, i.id));
        if i.holds() {
            self.add_load(i.node, -1);
        }
    }

    /// Instances may name a node not (or no longer) in the graph; such a
    /// node has a load but no place in `loads` until it joins.
    fn add_load(&mut self, node: NodeId, delta: i64) {
        let old = self.load_of.get(&node).copied();
        let new = u32::try_from(i64::from(old.unwrap_or(0)) + delta).expect("a node's load never goes negative");
        match old {
            Some(old) if self.loads.remove(&(old, node)) => {
                self.loads.insert((new, node));
            }
            _ => {}
        }
        self.load_of.insert(node, new);
    }

    fn node_added(&mut self, node: NodeId) {
        let load = self.load_of.get(&node).copied().unwrap_or(0);
        self.load_of.insert(node, load);
        self.loads.insert((load, node));
    }

    pub(crate) fn load(&self, node: NodeId) -> u32 {
        self.load_of.get(&node).copied().unwrap_or(0)
    }
}

fn remove_from<K: Ord + Clone>(map: &mut BTreeMap<K, BTreeSet<InstanceId>>, key: &K, id: InstanceId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
