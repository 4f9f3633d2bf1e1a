//! Ready-made scenario actions.
//!
//! In: parameters (distributions of downtime, pause length, partition
//! length...). Out: actions for [`crate::Process::new`], generic over the
//! component. Every random choice comes from the process's RNG; follow-ups
//! (a restart after a crash, the heal after a partition, the unclogs of a
//! swizzle) are scheduled with `Sim::after` with their delays drawn up front.

use crate::dist::Dist;
use crate::sim::Sim;
use haven_runtime::{Component, NodeId};
use rand::RngExt;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The shape every action has.
pub trait ActionFn<C: Component>: FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32) + 'static {}

impl<C: Component, F: FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32) + 'static> ActionFn<C> for F {}

fn pick(nodes: Vec<NodeId>, rng: &mut ChaCha8Rng) -> Option<NodeId> {
    nodes.choose(rng).copied()
}

fn up_nodes<C: Component + 'static>(sim: &Sim<C>) -> Vec<NodeId> {
    sim.node_ids().iter().copied().filter(|n| sim.is_up(*n)).collect()
}

/// Event i starts the i-th node (use `count` = number of nodes).
pub fn start_each<C: Component + 'static>() -> impl ActionFn<C> {
    |sim: &mut Sim<C>, _: &mut ChaCha8Rng, index: u32| {
        let ids = sim.node_ids();
        let node = ids[index as usize % ids.len()];
        sim.start(node);
    }
}

/// Starts every node that is down.
pub fn start_all<C: Component + 'static>() -> impl ActionFn<C> {
    |sim: &mut Sim<C>, _: &mut ChaCha8Rng, _: u32| {
        for node in sim.node_ids().to_vec() {
            sim.start(node);
        }
    }
}

/// Crashes a random running node.
pub fn crash_one<C: Component + 'static>() -> impl ActionFn<C> {
    |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        if let Some(node) = pick(up_nodes(sim), rng) {
            sim.crash(node);
        }
    }
}

/// Restarts a random crashed node.
pub fn restart_one<C: Component + 'static>() -> impl ActionFn<C> {
    |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        let down = sim.node_ids().iter().copied().filter(|n| sim.state(*n) == crate::NodeState::Crashed).collect();
        if let Some(node) = pick(down, rng) {
            sim.restart(node);
        }
    }
}

/// Crashes a random running node and restarts it after a `down` draw.
pub fn crash_restart<C: Component + 'static>(down: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        if let Some(node) = pick(up_nodes(sim), rng) {
            sim.crash(node);
            sim.after(down.sample(rng), move |sim, _| sim.restart(node));
        }
    }
}

/// Pauses a random running node for a `duration` draw.
pub fn pause_one<C: Component + 'static>(duration: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        if let Some(node) = pick(up_nodes(sim), rng) {
            sim.pause(node, duration.sample(rng));
        }
    }
}

/// Heals the partition after a `hold` draw (which heals every block, not
/// only this action's).
fn heal_after<C: Component + 'static>(sim: &mut Sim<C>, hold: Duration) {
    sim.after(hold, |sim, _| sim.heal());
}

/// A random majority/minority split, healed after a `hold` draw.
pub fn split_majority_minority<C: Component + 'static>(hold: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        sim.split_majority_minority(rng);
        heal_after(sim, hold.sample(rng));
    }
}

/// Two sides joined by one bridge node, healed after a `hold` draw.
pub fn bridge<C: Component + 'static>(hold: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        if sim.bridge(rng).is_some() {
            heal_after(sim, hold.sample(rng));
        }
    }
}

/// One random node cut off from all others, healed after a `hold` draw.
pub fn isolate_one<C: Component + 'static>(hold: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        if let Some(node) = pick(sim.node_ids().to_vec(), rng) {
            sim.isolate(node);
            heal_after(sim, hold.sample(rng));
        }
    }
}

/// One random directed link blocked, healed after a `hold` draw.
pub fn block_one_way<C: Component + 'static>(hold: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        let mut ids = sim.node_ids().to_vec();
        if ids.len() < 2 {
            return;
        }
        ids.shuffle(rng);
        sim.block_one_way(ids[0], ids[1]);
        heal_after(sim, hold.sample(rng));
    }
}

/// Heals every partition now.
pub fn heal<C: Component + 'static>() -> impl ActionFn<C> {
    |sim: &mut Sim<C>, _: &mut ChaCha8Rng, _: u32| sim.heal()
}

/// FoundationDB's swizzle: a random subset of nodes has its links clogged
/// one node at a time, `step` draws apart, then unclogged in a random order,
/// `step` draws apart.
pub fn swizzle<C: Component + 'static>(step: Dist) -> impl ActionFn<C> {
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        let mut nodes = sim.node_ids().to_vec();
        nodes.shuffle(rng);
        nodes.truncate(rng.random_range(1..=nodes.len()));
        let mut at = Duration::ZERO;
        for &node in &nodes {
            sim.after(at, move |sim, _| sim.clog_node(node));
            at += step.sample(rng);
        }
        nodes.shuffle(rng);
        for &node in &nodes {
            sim.after(at, move |sim, _| sim.unclog_node(node));
            at += step.sample(rng);
        }
    }
}

/// Gives every node a random clock: offset within `0..=offset_max` and
/// drift within ±`drift_ppm_abs_max` (best done before the nodes start).
pub fn randomize_clocks<C: Component + 'static>(offset_max: Duration, drift_ppm_abs_max: i64) -> impl ActionFn<C> {
    let offset_ns_max = u64::try_from(offset_max.as_nanos()).unwrap_or(u64::MAX);
    let drift_abs_max = drift_ppm_abs_max.clamp(0, crate::clock::DRIFT_PPM_ABS_MAX);
    move |sim: &mut Sim<C>, rng: &mut ChaCha8Rng, _: u32| {
        for node in sim.node_ids().to_vec() {
            let offset = Duration::from_nanos(rng.random_range(0..=offset_ns_max));
            let drift = rng.random_range(-drift_abs_max..=drift_abs_max);
            sim.set_clock(node, offset, drift);
        }
    }
}
