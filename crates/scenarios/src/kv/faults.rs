//! Fault actions shared by the station scenarios.
//!
//! In: the simulator and a process's RNG. Out: crashes and restarts, pauses
//! and leadership transfers of replicas (ids `1..=replicas`), crashes of
//! replicas whose term or vote is not yet durable, and crashes
//! and long pauses of clients (ids in `clients`).

use super::node::{KvNode, StationReplica};
use crate::election::any_partition;
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::{Dist, ProcId, Process, Scenario, Sim, actions};
use haven_station::StationMsg;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::ops::RangeInclusive;
use std::time::Duration;

/// How many of each replica fault a run gets: (events, mean seconds
/// between two), except `unsynced_checks`, taken every 50 ms.
#[derive(Clone, Copy, Debug)]
pub struct FaultMix {
    pub crashes: (u32, u64),
    pub pauses: (u32, u64),
    pub partitions: (u32, u64),
    pub clogs: (u32, u64),
    pub transfers: (u32, u64),
    pub unsynced_checks: u32,
}

/// Adds the replica faults every station scenario shares, each process
/// starting a second after `boot` ends; returns them for `end_after`.
pub fn add_replica_faults<R: StationReplica>(
    s: &mut Scenario<KvNode<R>>,
    boot: ProcId,
    replicas: u64,
    mix: FaultMix,
) -> Vec<ProcId> {
    let every = |mean_s: u64| Dist::exponential(Duration::from_secs(mean_s));
    let processes: Vec<Process<KvNode<R>>> = vec![
        Process::new("crash-restart", mix.crashes.0, every(mix.crashes.1), crash_restart_replica(replicas)),
        Process::new("pause", mix.pauses.0, every(mix.pauses.1), pause_replica(replicas)),
        Process::new("partition", mix.partitions.0, every(mix.partitions.1), any_partition()),
        Process::new("clog", mix.clogs.0, every(mix.clogs.1), actions::swizzle(Dist::uniform(ms(50), ms(300)))),
        Process::new("transfer", mix.transfers.0, every(mix.transfers.1), transfer_leadership(replicas)),
        Process::new(
            "crash-unsynced",
            mix.unsynced_checks,
            Dist::constant(ms(50)),
            crash_unsynced_hard_state(replicas),
        ),
    ];
    processes.into_iter().map(|p| s.add(p.after_end_of(boot, Duration::from_secs(1)))).collect()
}

/// What a scenario process runs.
pub type FaultAction<R> = Box<dyn FnMut(&mut Sim<KvNode<R>>, &mut ChaCha8Rng, u32) + 'static>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A running node among `ids`, picked at random.
pub fn pick_up<R: StationReplica>(
    sim: &Sim<KvNode<R>>,
    ids: RangeInclusive<u64>,
    rng: &mut ChaCha8Rng,
) -> Option<NodeId> {
    let up: Vec<NodeId> = ids.map(NodeId).filter(|&n| sim.is_up(n)).collect();
    (!up.is_empty()).then(|| up[rng.random_range(0..up.len())])
}

/// Crashes a running node among `ids` and restarts it after a `down` draw.
pub fn crash_restart<R: StationReplica>(ids: RangeInclusive<u64>, down: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let Some(node) = pick_up(sim, ids.clone(), rng) else { return };
        sim.crash(node);
        let down = down.sample(rng);
        sim.after(down, move |sim, _| sim.restart(node));
    })
}

/// Pauses a running node among `ids` for a `hold` draw.
pub fn pause<R: StationReplica>(ids: RangeInclusive<u64>, hold: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let Some(node) = pick_up(sim, ids.clone(), rng) else { return };
        sim.pause(node, hold.sample(rng));
    })
}

/// A replica crash (losing unsynced writes, maybe tearing the last one),
/// restarted 0.1-2 s later.
pub fn crash_restart_replica<R: StationReplica>(replicas: u64) -> FaultAction<R> {
    crash_restart(1..=replicas, Dist::uniform(ms(100), ms(2_000)))
}

/// A replica paused for 0.1-1.5 s.
pub fn pause_replica<R: StationReplica>(replicas: u64) -> FaultAction<R> {
    pause(1..=replicas, Dist::uniform(ms(100), ms(1_500)))
}

/// Asks the current leader (if any) to hand leadership to another replica.
pub fn transfer_leadership<R: StationReplica>(replicas: u64) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let is_leader = |sim: &Sim<KvNode<R>>, n: NodeId| {
            sim.component(n).and_then(|c| c.replica()).and_then(|r| r.raft()).is_some_and(|r| r.role() == Role::Leader)
        };
        let Some(leader) = (1..=replicas).map(NodeId).find(|&n| sim.is_up(n) && is_leader(sim, n)) else { return };
        let others: Vec<NodeId> = (1..=replicas).map(NodeId).filter(|&n| n != leader).collect();
        let to = others[rng.random_range(0..others.len())];
        sim.inject(leader, leader, StationMsg::TransferLeader { to });
    })
}

/// The worst moment to crash: a replica whose new term or vote is not yet
/// durable (a vote just granted, a campaign just started). Every check has
/// a one-in-ten chance to crash such a replica and restart it soon after;
/// the durability order must make the lost vote harmless.
pub fn crash_unsynced_hard_state<R: StationReplica>(replicas: u64) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let unsynced = |sim: &Sim<KvNode<R>>, n: NodeId| {
            let raft = sim.component(n).and_then(|c| c.replica()).and_then(|r| r.raft());
            raft.is_some_and(|r| r.hard_state() != r.durable_hard_state())
        };
        let Some(node) = (1..=replicas).map(NodeId).find(|&n| sim.is_up(n) && unsynced(sim, n)) else { return };
        if rng.random_bool(0.1) {
            sim.crash(node);
            let down = Dist::uniform(ms(50), ms(500)).sample(rng);
            sim.after(down, move |sim, _| sim.restart(node));
        }
    })
}
