//! Fault actions of the `ha-failover` scenario, beside the replica faults
//! shared with the station scenarios (`kv::faults`).
//!
//! In: the simulator and a process's RNG. Out: agents crashed and restarted
//! or paused (an agent running a primary is picked two times in three),
//! agents cut from every station replica (both ways or one way) while they
//! still reach the resource, proxies cut from the replicas or from the
//! agents, one replica cut from everyone, and crashes of single instances.

use super::agent::Agent;
use crate::kv::faults::{FaultAction, pick_up};
use crate::kv::node::{KvNode, StationReplica};
use haven_ha::{Action, AgentCommand, CommandId, InstanceId, Role};
use haven_runtime::NodeId;
use haven_sim::{Dist, Sim};
use haven_station::StationMsg;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::ops::RangeInclusive;

/// Share of agent faults aimed at an agent that runs a primary.
const HOLDER_PROBABILITY: f64 = 0.7;

fn agent<R: StationReplica>(sim: &Sim<KvNode<R>>, node: NodeId) -> Option<&Agent> {
    sim.component(node)?.agent()
}

/// Up primaries of running agents among `agents`: (agent, instance, service).
fn primaries<R: StationReplica>(
    sim: &Sim<KvNode<R>>,
    agents: &RangeInclusive<u64>,
) -> Vec<(NodeId, InstanceId, String)> {
    let up = agents.clone().map(NodeId).filter(|&n| sim.is_up(n));
    up.flat_map(|n| {
        let running = agent(sim, n).map(|a| a.instances().iter()).into_iter().flatten();
        running.filter(|(_, r)| r.up && r.role == Role::Primary).map(move |(&id, r)| (n, id, r.service.clone()))
    })
    .collect()
}

/// A running agent, most often one that runs a primary.
fn pick_agent<R: StationReplica>(
    sim: &Sim<KvNode<R>>,
    agents: &RangeInclusive<u64>,
    rng: &mut ChaCha8Rng,
) -> Option<NodeId> {
    let holders = primaries(sim, agents);
    if !holders.is_empty() && rng.random_bool(HOLDER_PROBABILITY) {
        return Some(holders[rng.random_range(0..holders.len())].0);
    }
    pick_up(sim, agents.clone(), rng)
}

/// Crashes an agent (its instances die with it) and restarts it after a `down` draw.
pub fn crash_restart_agent<R: StationReplica>(agents: RangeInclusive<u64>, down: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let Some(node) = pick_agent(sim, &agents, rng) else { return };
        sim.crash(node);
        let down = down.sample(rng);
        sim.after(down, move |sim, _| sim.restart(node));
    })
}

/// Pauses an agent for a `hold` draw.
pub fn pause_agent<R: StationReplica>(agents: RangeInclusive<u64>, hold: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let Some(node) = pick_agent(sim, &agents, rng) else { return };
        let hold = hold.sample(rng);
        sim.pause(node, hold);
    })
}

/// Cuts 1-4 agents from every replica (both ways, or only one way), healed
/// after a `hold` draw (healing every partition). The resource stays reachable.
pub fn cut_agents<R: StationReplica>(agents: RangeInclusive<u64>, replicas: u64, hold: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let mut cut: Vec<NodeId> = Vec::new();
        if let Some(first) = pick_agent(sim, &agents, rng) {
            cut.push(first);
        }
        let mut others: Vec<NodeId> = agents.clone().map(NodeId).filter(|n| !cut.contains(n)).collect();
        others.shuffle(rng);
        cut.extend(others.into_iter().take(rng.random_range(0..=3)));
        let stations: Vec<NodeId> = (1..=replicas).map(NodeId).collect();
        cut_until_healed(sim, rng, &cut, &stations, &hold);
    })
}

/// Cuts one proxy from every replica, or from every agent (both ways, or
/// only one way), healed after a `hold` draw (healing every partition).
pub fn cut_proxy<R: StationReplica>(
    proxies: RangeInclusive<u64>,
    agents: RangeInclusive<u64>,
    replicas: u64,
    hold: Dist,
) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let Some(proxy) = pick_up(sim, proxies.clone(), rng) else { return };
        let peers: Vec<NodeId> = match rng.random_bool(0.5) {
            true => (1..=replicas).map(NodeId).collect(),
            false => agents.clone().map(NodeId).collect(),
        };
        cut_until_healed(sim, rng, &[proxy], &peers, &hold);
    })
}

/// Blocks the links between `sides` and `peers` both ways or only one way
/// (a draw), and heals every partition after a `hold` draw.
fn cut_until_healed<R: StationReplica>(
    sim: &mut Sim<KvNode<R>>,
    rng: &mut ChaCha8Rng,
    sides: &[NodeId],
    peers: &[NodeId],
    hold: &Dist,
) {
    let (outward, inward) = match rng.random_range(0..3) {
        0 => (true, true),
        1 => (true, false),
        _ => (false, true),
    };
    for &side in sides {
        for &peer in peers {
            if outward {
                sim.block_one_way(side, peer);
            }
            if inward {
                sim.block_one_way(peer, side);
            }
        }
    }
    let hold = hold.sample(rng);
    sim.after(hold, |sim, _| sim.heal());
}

/// Cuts one replica from every other node, healed after a `hold` draw.
pub fn isolate_replica<R: StationReplica>(replicas: u64, hold: Dist) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let node = NodeId(rng.random_range(1..=replicas));
        sim.isolate(node);
        let hold = hold.sample(rng);
        sim.after(hold, |sim, _| sim.heal());
    })
}

/// Crashes one running primary instance behind the coordinator's back: its
/// agent gets, from itself, the message that means "this instance died".
pub fn crash_instance<R: StationReplica>(agents: RangeInclusive<u64>) -> FaultAction<R> {
    Box::new(move |sim, rng, _| {
        let holders = primaries(sim, &agents);
        if holders.is_empty() {
            return;
        }
        let (node, instance, service) = holders[rng.random_range(0..holders.len())].clone();
        let action = Action::Stop { service, timeout_ms: 0 };
        let session = agent(sim, node).and_then(|a| a.lease()).unwrap_or(0);
        let crash = AgentCommand { id: CommandId(0), node, session, instance, action };
        sim.inject(node, node, StationMsg::Agent(crash));
    })
}
