//! Test harness: a state graph driven one input at a time, as the station
//! would (step, check the invariants, apply), and compact renderings of a
//! step's output for transcript assertions.

#![allow(dead_code)]

use haven_ha::{
    CoordinatorConfig, Event, Input, InstanceId, OperatorAction, ServiceKind, ServiceSpec, StateGraph, Step, step,
};
use haven_runtime::NodeId;
use std::collections::BTreeMap;

pub const LEASE_MS: u64 = 1_000;
/// The session every test node joins with (a rejoin keeps it unless a test says otherwise).
pub const SESSION: i64 = 1;

pub struct World {
    pub g: StateGraph,
    pub config: CoordinatorConfig,
}

/// What a step emitted, rendered: changes, commands, decisions (text [cause]).
#[derive(Debug, PartialEq, Eq)]
pub struct Out {
    pub changes: Vec<String>,
    pub commands: Vec<String>,
    pub decisions: Vec<String>,
}

impl World {
    pub fn new() -> World {
        World { g: StateGraph::new(64), config: CoordinatorConfig::default() }
    }

    /// Steps, checks the graph's invariants, applies.
    pub fn raw(&mut self, now_ms: u64, event: Event) -> Step {
        let step = step(&self.g, &Input { now_ms, event }, &self.config);
        let mut next = self.g.clone();
        next.apply_step(&step);
        next.check(now_ms).expect("invariants after the step");
        self.g = next;
        step
    }

    pub fn at(&mut self, now_ms: u64, event: Event) -> Out {
        render(&self.raw(now_ms, event))
    }

    pub fn tick(&mut self, now_ms: u64) -> Out {
        self.at(now_ms, Event::Tick)
    }

    pub fn join(&mut self, now_ms: u64, node: u64, labels: &[(&str, &str)]) -> Out {
        self.join_for(now_ms, node, labels, LEASE_MS)
    }

    /// A join whose lease lasts `lease_ms`, for tests that are not about leases.
    pub fn join_for(&mut self, now_ms: u64, node: u64, labels: &[(&str, &str)], lease_ms: u64) -> Out {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let event = Event::NodeJoined {
            node: NodeId(node),
            address: format!("10.0.0.{node}:7000"),
            labels,
            lease_expires_at_ms: now_ms + lease_ms,
            session: SESSION,
        };
        self.at(now_ms, event)
    }

    /// Renews the leases (the steps may re-issue unacknowledged commands) of all the given nodes to `now_ms + LEASE_MS`.
    pub fn renew(&mut self, now_ms: u64, nodes: &[u64]) {
        for node in nodes {
            self.at(now_ms, Event::LeaseRenewed { node: NodeId(*node), expires_at_ms: now_ms + LEASE_MS });
        }
    }

    pub fn op(&mut self, now_ms: u64, action: OperatorAction) -> Out {
        self.at(now_ms, Event::Operator(action))
    }

    pub fn add(&mut self, now_ms: u64, spec: ServiceSpec) -> Out {
        self.op(now_ms, OperatorAction::AddService(Box::new(spec)))
    }

    /// The instance's current token, for reports about it.
    pub fn token(&self, instance: u64) -> Option<u64> {
        self.g.instances[&InstanceId(instance)].token
    }

    /// The agent reports the instance active (with its current token).
    pub fn active(&mut self, now_ms: u64, instance: u64) -> Out {
        let token = self.token(instance);
        self.at(now_ms, Event::InstanceActive { instance: InstanceId(instance), token })
    }

    pub fn exited(&mut self, now_ms: u64, instance: u64, code: i32) -> Out {
        let token = self.token(instance);
        self.at(now_ms, Event::InstanceExited { instance: InstanceId(instance), token, code: Some(code) })
    }

    /// The instance's state line, e.g. `i1 db@n1 primary active token 1`.
    pub fn show(&self, instance: u64) -> String {
        self.g.instances.get(&InstanceId(instance)).map_or("gone".to_string(), |i| i.to_string())
    }

    /// Every instance's state line, in id order.
    pub fn instances(&self) -> Vec<String> {
        self.g.instances.values().map(|i| i.to_string()).collect()
    }
}

pub fn render(step: &Step) -> Out {
    Out {
        changes: step.changes.iter().map(|c| c.to_string()).collect(),
        commands: step.commands.iter().map(|c| c.to_string()).collect(),
        decisions: step.decisions.iter().map(|d| format!("{} [{}]", d.text, d.cause)).collect(),
    }
}

pub fn singleton(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, "/usr/bin/true", ServiceKind::Singleton { standbys: 0 })
}

pub fn n(id: u64) -> NodeId {
    NodeId(id)
}
