//! Where a new instance of a service may go, and which node is best.
//!
//! In: the graph at the current time and one service. Out: the eligible
//! nodes best first, or why there is none, in words ("n1 drained, n2 lacks
//! label disk=ssd"). Eligible: alive, not drained, not labelled to run no
//! services (`NO_SERVICES_LABEL`), every selector label,
//! not kept out by the restart policy, no instance of the service already,
//! no anti-affine instance (either direction), next to the colocated
//! service's active primary. Best: the operator's move target, then a node
//! with a ready standby (when promoting), then the preferred order, then the
//! least loaded, then the lowest id.

use crate::decision::secs;
use crate::graph::StateGraph;
use crate::instance::{Instance, InstanceState, Role};
use crate::node::{NO_SERVICES_LABEL, Node};
use crate::service::Service;
use haven_runtime::NodeId;
use std::fmt;

/// How many per-node reasons a "no eligible node" decision lists.
const REASONS_LEN_MAX: usize = 8;

/// Why a node cannot take a new instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ineligible {
    Dead,
    Drained,
    RunsNoServices,
    MissingLabel(String),
    Banned { until_ms: u64 },
    HasInstance,
    AntiAffinity(String),
    NotColocated(String),
}

/// Placement of one service on the graph as it stands; instances by node
/// come from the graph's index.
pub(crate) struct Candidates<'a> {
    g: &'a StateGraph,
    service: &'a Service,
    now_ms: u64,
    /// A node whose only instance of the service is a ready standby is
    /// eligible (promotion) rather than occupied.
    promoting: bool,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(g: &'a StateGraph, service: &'a Service, now_ms: u64, promoting: bool) -> Candidates<'a> {
        Candidates { g, service, now_ms, promoting }
    }

    /// Instances holding a slot on `node`.
    fn on(&self, node: NodeId) -> impl Iterator<Item = &'a Instance> + 'a {
        self.g.instances_on(node).filter(|i| i.holds())
    }

    /// The ready standby of this service on `node`, if any.
    pub(crate) fn ready_standby(&self, node: NodeId) -> Option<&'a Instance> {
        let name = self.service.name();
        self.on(node).find(|i| i.service == name && i.role == Role::Standby && i.state == InstanceState::Active)
    }

    pub(crate) fn why_not(&self, node: &Node) -> Option<Ineligible> {
        let spec = &self.service.spec;
        if !node.is_alive(self.now_ms) {
            return Some(Ineligible::Dead);
        }
        if node.drained {
            return Some(Ineligible::Drained);
        }
        if !node.runs_services() {
            return Some(Ineligible::RunsNoServices);
        }
        if let Some(label) = node.missing_label(&spec.placement.labels) {
            return Some(Ineligible::MissingLabel(label));
        }
        if let Some(until_ms) = self.service.bans.get(&node.id).filter(|until| self.now_ms < **until) {
            return Some(Ineligible::Banned { until_ms: *until_ms });
        }
        self.why_not_neighbours(node.id)
    }

    fn why_not_neighbours(&self, node: NodeId) -> Option<Ineligible> {
        let name = self.service.name();
        let standby_ok = |i: &Instance| self.promoting && self.ready_standby(node).is_some_and(|r| r.id == i.id);
        if self.on(node).filter(|i| i.service == name).any(|i| !standby_ok(i)) {
            return Some(Ineligible::HasInstance);
        }
        for other in self.on(node).filter(|i| i.service != name) {
            let avoids_other = self.service.spec.placement.anti_affinity.contains(&other.service);
            let other_avoids = self
                .g
                .services
                .get(&other.service)
                .is_some_and(|s| s.spec.placement.anti_affinity.iter().any(|n| n == name));
            if avoids_other || other_avoids {
                return Some(Ineligible::AntiAffinity(other.service.clone()));
            }
        }
        if let Some(with) = &self.service.spec.placement.colocate_with {
            let here = self.on(node).any(|i| i.service == *with && i.is_primary() && i.state == InstanceState::Active);
            if !here {
                return Some(Ineligible::NotColocated(with.clone()));
            }
        }
        None
    }

    fn load(&self, node: NodeId) -> u32 {
        self.g.index.load(node)
    }

    /// The best eligible node, as `ranked` would order them, without
    /// ranking every node: the move target, then nodes with a ready
    /// standby, then the preferred ones in order, then the least loaded
    /// (the graph keeps nodes by load), so a placement costs about the
    /// nodes it skips, not the cluster's size. None eligible: why.
    pub(crate) fn best(&self) -> Result<NodeId, String> {
        let eligible = |id: &NodeId| self.g.nodes.get(id).is_some_and(|n| self.why_not(n).is_none());
        if let Some(to) = self.service.move_to.filter(eligible) {
            return Ok(to);
        }
        let spec = &self.service.spec;
        if self.promoting {
            let standbys = self.g.instances_of(self.service.name()).filter(|i| i.role == Role::Standby);
            let mut ready: Vec<NodeId> =
                standbys.filter(|i| self.ready_standby(i.node).is_some()).map(|i| i.node).filter(eligible).collect();
            let preferred_len = spec.placement.preferred.len();
            ready.sort_by_key(|node| {
                let preferred = spec.placement.preferred.iter().position(|p| p == node).unwrap_or(preferred_len);
                (preferred, self.load(*node), *node)
            });
            if let Some(node) = ready.first() {
                return Ok(*node);
            }
        }
        if let Some(node) = spec.placement.preferred.iter().copied().find(eligible) {
            return Ok(node);
        }
        match self.g.index.loads.iter().map(|(_, id)| *id).find(eligible) {
            Some(node) => Ok(node),
            None => self.ranked().map(|nodes| nodes[0]),
        }
    }

    /// Eligible nodes, best first; or why there is none.
    pub(crate) fn ranked(&self) -> Result<Vec<NodeId>, String> {
        let spec = &self.service.spec;
        let mut eligible = Vec::new();
        let mut reasons = Vec::new();
        for node in self.g.nodes.values() {
            match self.why_not(node) {
                None => eligible.push(node.id),
                Some(why) => reasons.push(format!("{} {why}", node.id)),
            }
        }
        if eligible.is_empty() {
            return Err(none_eligible(&reasons));
        }
        let preferred_len = spec.placement.preferred.len();
        eligible.sort_by_key(|node| {
            let moved_here = self.service.move_to != Some(*node);
            let standby = !(self.promoting && self.ready_standby(*node).is_some());
            let preferred = spec.placement.preferred.iter().position(|p| p == node).unwrap_or(preferred_len);
            (moved_here, standby, preferred, self.load(*node), *node)
        });
        Ok(eligible)
    }
}

fn none_eligible(reasons: &[String]) -> String {
    if reasons.is_empty() {
        return "no eligible node: no node has joined".to_string();
    }
    let shown = reasons.len().min(REASONS_LEN_MAX);
    let mut text = format!("no eligible node: {}", reasons[..shown].join(", "));
    if reasons.len() > shown {
        text.push_str(&format!(" and {} more", reasons.len() - shown));
    }
    text
}

/// The first `start_after` service without an active primary, if any.
pub(crate) fn waiting_for(g: &StateGraph, service: &Service) -> Option<String> {
    service.spec.placement.start_after.iter().find(|dep| !has_active_primary(g, dep)).cloned()
}

pub(crate) fn has_active_primary(g: &StateGraph, service: &str) -> bool {
    g.instances_of(service).any(|i| i.is_primary() && i.state == InstanceState::Active)
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ineligible::Dead => f.write_str("is dead"),
            Ineligible::Drained => f.write_str("drained"),
            Ineligible::RunsNoServices => {
                write!(f, "runs no services ({}={})", NO_SERVICES_LABEL.0, NO_SERVICES_LABEL.1)
            }
            Ineligible::MissingLabel(label) => write!(f, "lacks label {label}"),
            Ineligible::Banned { until_ms } => write!(f, "failed it (kept out until {})", secs(*until_ms)),
            Ineligible::HasInstance => f.write_str("runs it already"),
            Ineligible::AntiAffinity(other) => write!(f, "runs {other}"),
            Ineligible::NotColocated(with) => write!(f, "has no active {with}"),
        }
    }
}
