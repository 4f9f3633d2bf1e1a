//! What a fence device buys: the time from a machine's crash to its
//! singleton active elsewhere, with and without one, on the `ha-failover`
//! cluster.
//!
//! In: a seed and whether the stations have a fence device. Out: the
//! simulated time from the crash of the agent running `db`'s primary (the
//! machine stays down) to the leader's graph showing `db` active on
//! another node, or `None` if it did not happen within `WAIT_MAX`. No
//! other fault runs. Without a device the replacement waits for the
//! crashed agent's lease to expire (TTL 2 s); with one, for `fence_after`
//! of silence plus the device's answer.

use super::checks::leader_graph;
use super::failover::build_with;
use super::fence::TokenFence;
use super::fence_device::{DeviceKind, FenceDevice, POLL_INTERVAL, station_policy};
use haven_ha::InstanceState;
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::Replica;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// Time the cluster gets to place every service before the crash.
const SETTLE: Duration = Duration::from_secs(8);
/// Longest wait for the replacement.
pub const WAIT_MAX: Duration = Duration::from_secs(20);

/// The node running `db`'s active primary, in the leader's graph.
fn db_active_on<R: crate::kv::node::StationReplica>(sim: &Sim<crate::kv::node::KvNode<R>>) -> Option<NodeId> {
    let graph = leader_graph(sim)?;
    graph.instances_of("db").find(|i| i.is_primary() && i.state == InstanceState::Active).map(|i| i.node)
}

/// Crash to replacement active, in simulated time (see the header).
pub fn crash_to_active(seed: u64, with_device: bool) -> Option<Duration> {
    let policy = with_device.then(station_policy);
    let mut sim = build_with(seed, Replica::new, TokenFence::boxed, policy);
    let device = FenceDevice::shared(DeviceKind::Honest, &super::failover::services());
    let seen = device.clone();
    sim.add_safety("fence requests", move |sim| seen.borrow_mut().observe_and_check(sim));
    for node in sim.node_ids().to_vec() {
        sim.start(node);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sim.run_for(SETTLE);
    let holder = db_active_on(&sim)?;
    let crashed_at = sim.now();
    sim.crash(holder);
    while sim.now().saturating_since(crashed_at) < WAIT_MAX {
        sim.run_for(POLL_INTERVAL);
        device.borrow_mut().act(&mut sim, &mut rng);
        if db_active_on(&sim).is_some_and(|n| n != holder) {
            return Some(sim.now().saturating_since(crashed_at));
        }
    }
    None
}
