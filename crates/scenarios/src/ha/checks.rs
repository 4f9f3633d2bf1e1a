//! The `ha-failover` scenario's checkers.
//!
//! In: the resource's accepted writes (its outputs, stamped with global
//! time) and, after healing, the leader's state graph. Out: the first
//! violation, naming the service, tokens, writers and times.
//!
//! - Safety, after every event: per singleton, the tokens of the writes the
//!   resource accepted never go back: a write with a token lower than an
//!   earlier write's comes from an old holder still active after a newer
//!   one started, i.e. two holders' active periods overlap. A replicated
//!   service's instances are all primaries at once, so for it the rule is
//!   per instance (a restarted incarnation never writes an older token).
//! - Liveness, after healing: the leader's graph has every service, each
//!   singleton exactly one active primary and the replicated service its
//!   count, and each of those primaries wrote to the resource, from its
//!   node with its token, within the last `WRITE_RECENT`.

use super::resource::Write;
use crate::kv::node::{KvNode, KvOut, StationReplica};
use haven_ha::{InstanceId, InstanceState, ServiceKind, ServiceSpec, StateGraph};
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::{Sim, SimTime};
use std::collections::BTreeMap;
use std::time::Duration;

/// A primary counts as writing if it wrote this recently.
pub const WRITE_RECENT: Duration = Duration::from_millis(500);

/// The last write under one key of the ordering rule.
#[derive(Clone, Debug)]
struct Last {
    token: u64,
    writer: NodeId,
    instance: InstanceId,
    at: SimTime,
}

#[derive(Debug)]
pub struct ResourceChecks {
    services: Vec<ServiceSpec>,
    /// By ordering key: the service (singleton) or service and instance.
    last: BTreeMap<(String, Option<InstanceId>), Last>,
    /// The last write of each (service, instance, token, writer).
    recent: BTreeMap<(String, InstanceId, u64, NodeId), SimTime>,
    writes: u64,
}

impl ResourceChecks {
    pub fn new(services: Vec<ServiceSpec>) -> ResourceChecks {
        ResourceChecks { services, last: BTreeMap::new(), recent: BTreeMap::new(), writes: 0 }
    }

    pub fn writes(&self) -> u64 {
        self.writes
    }

    fn is_singleton(&self, service: &str) -> bool {
        self.services.iter().any(|s| s.name == service && s.is_singleton())
    }

    /// Safety: judges the writes the last event made the resource accept.
    pub fn observe<R: StationReplica>(&mut self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let now = sim.now();
        for (_, out) in sim.last_outputs() {
            let KvOut::Resource(write) = out else { continue };
            self.accept(write, now)?;
        }
        Ok(())
    }

    fn accept(&mut self, write: &Write, now: SimTime) -> Result<(), String> {
        self.writes += 1;
        let Write { service, instance, token, writer } = write;
        self.recent.insert((service.clone(), *instance, *token, *writer), now);
        let key = (service.clone(), (!self.is_singleton(service)).then_some(*instance));
        if let Some(last) = self.last.get(&key)
            && *token < last.token
        {
            return Err(format!(
                "{service}: the resource accepted token {token} from {writer} ({instance}) at {now} after token {} \
                 from {} ({}) at {}: an old holder is still active",
                last.token, last.writer, last.instance, last.at
            ));
        }
        self.last.insert(key, Last { token: *token, writer: *writer, instance: *instance, at: now });
        Ok(())
    }

    /// Liveness: every service runs as wanted in the leader's graph and its
    /// primaries write.
    pub fn converged<R: StationReplica>(&self, sim: &Sim<KvNode<R>>) -> Result<(), String> {
        let graph = leader_graph(sim).ok_or("no running leader")?;
        for spec in &self.services {
            let name = &spec.name;
            if !graph.services.contains_key(name) {
                return Err(format!("{name} is not in the leader's graph"));
            }
            let active: Vec<_> =
                graph.instances_of(name).filter(|i| i.is_primary() && i.state == InstanceState::Active).collect();
            let wanted = match spec.kind {
                ServiceKind::Singleton { .. } => 1,
                ServiceKind::Replicated { count } => count as usize,
                ServiceKind::EveryNode => return Err(format!("{name}: every-node services are not checked")),
            };
            if active.len() != wanted {
                let list: Vec<String> = graph.instances_of(name).map(|i| i.to_string()).collect();
                return Err(format!("{name} has {} active primaries, not {wanted}: {}", active.len(), list.join(", ")));
            }
            for instance in active {
                let key = (name.clone(), instance.id, instance.token.unwrap_or(0), instance.node);
                let wrote = self.recent.get(&key).is_some_and(|at| sim.now().saturating_since(*at) <= WRITE_RECENT);
                if !wrote {
                    return Err(format!(
                        "{instance} is active in the graph but did not write in the last {WRITE_RECENT:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The state graph of the running leader of the highest term.
pub fn leader_graph<R: StationReplica>(sim: &Sim<KvNode<R>>) -> Option<StateGraph> {
    let leaders = sim.node_ids().iter().filter(|&&n| sim.is_up(n)).filter_map(|&n| {
        let replica = sim.component(n)?.replica()?;
        let raft = replica.raft().filter(|r| r.role() == Role::Leader)?;
        Some((raft.term(), replica.state_machine()?))
    });
    leaders.max_by_key(|(term, _)| *term).map(|(_, sm)| sm.ha().graph.clone())
}
