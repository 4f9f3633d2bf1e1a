//! Which proxy each node's agent reports through: part of every
//! coordinator step.
//!
//! In: the step's working graph (nodes with their labels, leases and
//! assigned proxy) and its time. Out: `PutNode` changes that set
//! `Node::proxy`, and one decision per step that moved any, naming how many
//! nodes went to which proxy.
//!
//! A proxy is a node that joined with the label `haven.role=proxy` (any
//! agent can be made one) and whose lease holds: its liveness is its lease,
//! so a proxy is dead exactly when the graph says so, and every station
//! agrees. A live node that is not a proxy keeps its proxy while that proxy
//! lives; one with none, or whose proxy died, gets the live proxy with the
//! fewest live nodes (the lowest id among equals), unless every proxy serves
//! `PROXY_AGENTS_MAX` already. With no live proxy a node gets none, and its
//! agent talks to the stations directly: small clusters run without proxies
//! at no cost. Assignments are sticky (no rebalancing when a proxy joins):
//! moving an agent costs it a round trip to find its new proxy, so only a
//! dead proxy's agents move. A proxy itself reports to the stations.

use crate::coordinator::Stepper;
use haven_runtime::NodeId;
use std::collections::BTreeMap;

/// The label that makes a node a proxy, and its value.
pub const PROXY_LABEL: (&str, &str) = ("haven.role", "proxy");
/// The label a `haven proxy` joins with, holding the URL agents reach it at.
pub const PROXY_URL_LABEL: &str = "haven.proxy.url";
/// Live nodes one proxy is assigned at most (the proxy's own bound on the
/// agents it serves should be at least this).
pub const PROXY_AGENTS_MAX: usize = 1_000;

impl Stepper<'_> {
    /// Gives every live node without a live proxy the least loaded one.
    pub(crate) fn assign_proxies(&mut self) {
        let now_ms = self.now_ms;
        let is_proxy =
            |labels: &BTreeMap<String, String>| labels.get(PROXY_LABEL.0).is_some_and(|v| v == PROXY_LABEL.1);
        let mut load: BTreeMap<u64, usize> = (self.g.nodes.values())
            .filter(|n| n.is_alive(now_ms) && is_proxy(&n.labels))
            .map(|n| (n.id.0, 0))
            .collect();
        let mut orphans = Vec::new();
        let no_proxy = load.is_empty();
        for node in self.g.nodes.values().filter(|n| n.is_alive(now_ms)) {
            let serves = is_proxy(&node.labels);
            match node.proxy.and_then(|p| load.get_mut(&p)) {
                Some(count) if !serves => *count += 1,
                None if node.proxy.is_none() && (no_proxy || serves) => {}
                _ => orphans.push(node.id),
            }
        }
        let mut moved: BTreeMap<Option<u64>, usize> = BTreeMap::new();
        for id in orphans {
            let mut node = self.g.nodes[&id].clone();
            let proxy = match is_proxy(&node.labels) {
                true => None,
                false => least_loaded(&load),
            };
            if let Some(count) = proxy.and_then(|p| load.get_mut(&p)) {
                *count += 1;
            }
            if node.proxy != proxy {
                node.proxy = proxy;
                *moved.entry(proxy).or_default() += 1;
                self.change(crate::graph::Change::PutNode(node));
            }
        }
        if !moved.is_empty() {
            let parts: Vec<String> = moved.iter().map(|(p, n)| format!("{n} to {}", proxy_name(*p))).collect();
            self.decide(None, format!("assigned nodes to proxies: {}", parts.join(", ")));
        }
    }
}

fn least_loaded(load: &BTreeMap<u64, usize>) -> Option<u64> {
    let open = load.iter().filter(|(_, n)| **n < PROXY_AGENTS_MAX);
    open.min_by_key(|(id, n)| (**n, **id)).map(|(id, _)| *id)
}

fn proxy_name(proxy: Option<u64>) -> String {
    match proxy {
        Some(id) => NodeId(id).to_string(),
        None => "the stations".into(),
    }
}
