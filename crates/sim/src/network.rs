//! The network's state: link settings, partitions and clogs.
//!
//! In: per-link settings and the fault calls of the simulator (block,
//! clog, heal). Out: answers to "is this directed link blocked / clogged,
//! and how does it behave", plus the messages a clogged link holds, handed
//! back in send order once it opens.
//!
//! The simulator owns the randomness and the event queue; this type only
//! keeps state, as dense n×n tables, because every send asks about its link.

use crate::dist::Dist;
use crate::error::{ConfigError, check_probability};
use std::collections::{BTreeMap, BTreeSet};

/// How one directed link behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    pub latency: Dist,
    /// Chance that a message is lost.
    pub loss_probability: f64,
    /// Chance that a message is delivered twice (each copy with its own
    /// latency, which also reorders).
    pub duplicate_probability: f64,
}

impl Default for LinkConfig {
    /// A healthy LAN link ([`Dist::lan`]), losing and duplicating nothing.
    fn default() -> Self {
        LinkConfig { latency: Dist::lan(), loss_probability: 0.0, duplicate_probability: 0.0 }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.latency.validate("link latency")?;
        check_probability("link loss probability", self.loss_probability)?;
        check_probability("link duplicate probability", self.duplicate_probability)
    }
}

/// A message a clogged link holds: the receiver's incarnation at send time
/// and the message.
#[derive(Debug)]
pub(crate) struct Held<M> {
    pub(crate) to_incarnation: u32,
    pub(crate) msg: M,
}

/// Messages held by one link, by send sequence number.
pub(crate) type HeldQueue<M> = BTreeMap<u64, Held<M>>;

#[derive(Debug)]
pub(crate) struct Network<M> {
    n: usize,
    /// Slot 0 is the default; overridden links point at their own slot.
    configs: Vec<LinkConfig>,
    /// Sparse (by link), so that tens of thousands of nodes cost memory in
    /// the links a scenario sets, not in n².
    config_slot: BTreeMap<(usize, usize), u32>,
    blocked: BTreeSet<(usize, usize)>,
    clogged_links: BTreeSet<(usize, usize)>,
    clogged_nodes: Vec<bool>,
    held: BTreeMap<(usize, usize), HeldQueue<M>>,
    held_len_max: usize,
}

impl<M> Network<M> {
    pub(crate) fn new(n: usize, default: LinkConfig, held_len_max: usize) -> Network<M> {
        Network {
            n,
            configs: vec![default],
            config_slot: BTreeMap::new(),
            blocked: BTreeSet::new(),
            clogged_links: BTreeSet::new(),
            clogged_nodes: vec![false; n],
            held: BTreeMap::new(),
            held_len_max,
        }
    }

    pub(crate) fn config(&self, from: usize, to: usize) -> &LinkConfig {
        let slot = self.config_slot.get(&(from, to)).copied().unwrap_or(0);
        &self.configs[slot as usize]
    }

    pub(crate) fn set_config(&mut self, from: usize, to: usize, config: LinkConfig) {
        assert!(from < self.n && to < self.n, "link {from}->{to} outside {} nodes", self.n);
        match self.config_slot.get(&(from, to)).copied() {
            None => {
                let slot = u32::try_from(self.configs.len()).expect("at most n*n link slots");
                self.config_slot.insert((from, to), slot);
                self.configs.push(config);
            }
            Some(slot) => self.configs[slot as usize] = config,
        }
    }

    pub(crate) fn set_default_config(&mut self, config: LinkConfig) {
        self.configs[0] = config;
    }

    pub(crate) fn blocked(&self, from: usize, to: usize) -> bool {
        !self.blocked.is_empty() && self.blocked.contains(&(from, to))
    }

    pub(crate) fn set_blocked(&mut self, from: usize, to: usize, blocked: bool) {
        if blocked {
            self.blocked.insert((from, to));
        } else {
            self.blocked.remove(&(from, to));
        }
    }

    pub(crate) fn unblock_all(&mut self) {
        self.blocked.clear();
    }

    /// A node's clog covers its links with other nodes, not to itself.
    pub(crate) fn clogged(&self, from: usize, to: usize) -> bool {
        (!self.clogged_links.is_empty() && self.clogged_links.contains(&(from, to)))
            || (from != to && (self.clogged_nodes[from] || self.clogged_nodes[to]))
    }

    pub(crate) fn set_link_clogged(&mut self, from: usize, to: usize, clogged: bool) {
        if clogged {
            self.clogged_links.insert((from, to));
        } else {
            self.clogged_links.remove(&(from, to));
        }
    }

    pub(crate) fn set_node_clogged(&mut self, node: usize, clogged: bool) {
        self.clogged_nodes[node] = clogged;
    }

    pub(crate) fn node_clogged(&self, node: usize) -> bool {
        self.clogged_nodes[node]
    }

    pub(crate) fn unclog_all(&mut self) {
        self.clogged_links.clear();
        self.clogged_nodes.fill(false);
    }

    /// Holds a message on a clogged link; false if the link's queue is full
    /// (the message is then dropped, as a full socket buffer would).
    pub(crate) fn hold(&mut self, from: usize, to: usize, send_seq: u64, held: Held<M>) -> bool {
        let queue = self.held.entry((from, to)).or_default();
        if queue.len() >= self.held_len_max {
            return false;
        }
        queue.insert(send_seq, held);
        true
    }

    /// Removes and returns the queues of every link that is no longer
    /// clogged, by link and then in send order.
    pub(crate) fn take_released(&mut self) -> Vec<((usize, usize), HeldQueue<M>)> {
        let open: Vec<(usize, usize)> =
            self.held.keys().copied().filter(|&(from, to)| !self.clogged(from, to)).collect();
        open.into_iter().filter_map(|link| self.held.remove(&link).map(|queue| (link, queue))).collect()
    }
}
