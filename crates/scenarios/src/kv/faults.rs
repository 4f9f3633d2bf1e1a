//! Fault actions shared by the station scenarios.
//!
//! In: the simulator and a process's RNG. Out: crashes and restarts, pauses
//! and leadership transfers of replicas (ids `1..=replicas`), crashes of
//! replicas whose term or vote is not yet durable, and crashes
//! and long pauses of clients (ids in `clients`).

use super::node::{KvNode, StationReplica};
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::{Dist, Sim};
use haven_station::StationMsg;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::ops::RangeInclusive;
use std::time::Duration;

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
