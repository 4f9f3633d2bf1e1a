//! The raft-core benchmark's workload: 3 replicas in one process over the
//! simulator's network with zero latency and a disk with no delay, and one
//! load generator with `concurrency` closed-loop sessions writing puts.
//! The replicas auto-compact their history as `haven station` does.
//!
//! In: the concurrency and the number of writes to acknowledge.
//! Out: how many writes were acknowledged and how many events that took.
//! This crate never reads the wall clock: the caller times the call.

use super::load::LoadGen;
use super::node::KvNode;
use haven_runtime::NodeId;
use haven_sim::{Dist, LinkConfig, Sim, SimConfig};
use haven_station::{Replica, ReplicaConfig};

pub const MEMBERS: u64 = 3;
/// Bytes of each value written.
pub const VALUE_BYTES: usize = 64;
/// The station daemon's default auto-compaction: snapshots stay bounded
/// however long the run (without it each carries the whole history).
pub const HISTORY_REVISIONS_MAX: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchRun {
    pub writes: u64,
    pub events: u64,
    pub sim_ns: u64,
}

pub fn raft_core(concurrency: usize, writes: u64) -> BenchRun {
    let mut config = SimConfig::new(0, (MEMBERS + 1) as usize);
    config.link = LinkConfig { latency: Dist::ZERO, loss_probability: 0.0, duplicate_probability: 0.0 };
    config.disk.write_latency = Dist::ZERO;
    config.disk.sync_latency = Dist::ZERO;
    config.disk.read_latency = Dist::ZERO;
    let voters: Vec<NodeId> = (1..=MEMBERS).map(NodeId).collect();
    let load = NodeId(MEMBERS + 1);
    let mut sim = Sim::new(config, move |id: NodeId| {
        if id == load {
            KvNode::Load(Box::new(LoadGen::new(voters.clone(), concurrency, VALUE_BYTES)))
        } else {
            let mut replica = ReplicaConfig::new(voters.clone());
            replica.history_revisions_max = Some(HISTORY_REVISIONS_MAX);
            KvNode::Replica(Box::new(Replica::new(replica)))
        }
    })
    .expect("the benchmark's configuration is valid");
    for id in 1..=MEMBERS + 1 {
        sim.start(NodeId(id));
    }
    let acked = |sim: &Sim<KvNode>| sim.component(load).and_then(|c| c.load()).map_or(0, LoadGen::acked);
    while acked(&sim) < writes {
        assert!(sim.step(), "the benchmark cluster stopped making progress at {} writes", acked(&sim));
    }
    BenchRun { writes: acked(&sim), events: sim.counters().events, sim_ns: sim.now().as_nanos() }
}
