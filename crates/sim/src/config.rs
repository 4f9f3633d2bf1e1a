//! The settings of one run.
//!
//! In: a seed and a node count, plus optional overrides of the defaults.
//! Out: a validated [`SimConfig`] from which `Sim::new` builds the world.

use crate::disk::DiskConfig;
use crate::error::ConfigError;
use crate::network::LinkConfig;
use std::time::Duration;

/// Most nodes one simulation holds (`ha-scale` runs 30,000 agents; link
/// settings, blocks and clogs are kept per link set, not in n×n tables).
pub const NODES_MAX: usize = 65_536;

#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Every random choice of the run derives from this.
    pub seed: u64,
    /// Nodes are `NodeId(1)..=NodeId(nodes)`.
    pub nodes: usize,
    /// How every link behaves unless overridden with `Sim::set_link`.
    pub link: LinkConfig,
    pub disk: DiskConfig,
    /// Virtual time after which the run stops.
    pub time_max: Duration,
    /// Events after which the run stops with a violation (a livelock).
    pub events_max: u64,
    /// Messages a clogged link holds; beyond, they are dropped.
    pub clog_held_len_max: usize,
    /// Messages a paused node's buffer holds; beyond, they are dropped.
    pub pause_held_len_max: usize,
    /// Events waiting in the queue after which the run stops with a
    /// violation (a message flood).
    pub queued_len_max: usize,
    /// Closures scheduled with `Sim::after` and not yet run.
    pub calls_pending_max: usize,
    /// When a paused node resumes, hand it the messages that waited in
    /// batches of up to `MESSAGES_PER_BATCH_MAX` (`Component::on_messages`),
    /// as the production executor hands over a backlog; otherwise one by one.
    pub batch_on_resume: bool,
}

impl SimConfig {
    /// Defaults: LAN links, an SSD-like disk, at most one hour of virtual
    /// time, 100 million events, 10 million queued.
    pub fn new(seed: u64, nodes: usize) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            link: LinkConfig::default(),
            disk: DiskConfig::default(),
            time_max: Duration::from_secs(3600),
            events_max: 100_000_000,
            clog_held_len_max: 100_000,
            pause_held_len_max: 100_000,
            calls_pending_max: 1_000_000,
            queued_len_max: 10_000_000,
            batch_on_resume: false,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=NODES_MAX).contains(&self.nodes) {
            return Err(ConfigError::Nodes { nodes: self.nodes, nodes_max: NODES_MAX });
        }
        self.link.validate()?;
        self.disk.validate()?;
        if self.calls_pending_max > u32::MAX as usize {
            return Err(ConfigError::Above { what: "calls_pending_max", max: u64::from(u32::MAX) });
        }
        if self.events_max == 0 {
            return Err(ConfigError::ZeroLimit { what: "events_max" });
        }
        let limits = [
            ("clog_held_len_max", self.clog_held_len_max),
            ("pause_held_len_max", self.pause_held_len_max),
            ("calls_pending_max", self.calls_pending_max),
            ("queued_len_max", self.queued_len_max),
        ];
        match limits.iter().find(|(_, v)| *v == 0) {
            Some((what, _)) => Err(ConfigError::ZeroLimit { what }),
            None => Ok(()),
        }
    }
}
