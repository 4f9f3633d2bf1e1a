//! The `election` scenario: ◇P + Ω + broadcast on 5 nodes under faults.
//!
//! In: a seed, a detector configuration and a detector implementation (the
//! tests plant broken ones). Out: a [`RunReport`].
//!
//! The network is a lossy LAN on which one or two "far" nodes sit behind
//! slow links (100–200 ms each way) for the whole run: their round trips
//! exceed the detector's initial timeout, so a correct ◇P must learn a
//! longer timeout from its false suspicions, and one that cannot keeps
//! flapping forever. On top come crashes and restarts (some onto a full or
//! corrupting disk), pauses, partitions of every kind, clogging and clock
//! drift; then everything is healed, links stop losing messages (GST), and
//! liveness is checked.

use haven_basics::detector::Detector;
use haven_basics::{DetectorConfig, ElectionEvent, ElectionNode, PingDetector};
use haven_runtime::NodeId;
use haven_sim::{Dist, LinkConfig, ProcId, Process, RunReport, Scenario, Sim, SimConfig, SimTime, TraceSink, actions};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const SUMMARY: &str = "5 nodes run the failure detector, Ω and broadcast on a lossy LAN (1% loss, 1% duplication) \
where 1-2 far nodes have 100-200 ms links; clocks drift up to ±500 ppm. For about 30 s: crash/restarts (some onto a \
full or corrupting disk), pauses, partitions (majority/minority, bridge, isolation, one-way) and clogging. Safety, \
after every event: once the topology and every detector have been quiet for 2 s, the nodes of each cleanly separated, \
fully connected group trust one leader from that group; broadcast never creates or duplicates a delivery. Liveness: \
within 5 s of healing (faults end and links stop losing messages; far links stay slow), all live nodes trust the same \
live leader, and keep trusting it for 5 s.";

pub const NODES: usize = 5;
/// Quiet time (no fault, no detector event) after which views must agree:
/// above the worst detection time (timeout_max + period) plus a far round trip.
pub const QUIET: Duration = Duration::from_secs(2);
/// Liveness bound after healing, and how long agreement must then hold.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(5);
pub const HOLD_FOR: Duration = Duration::from_secs(5);

type Node<D> = ElectionNode<D>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One seed of the scenario with the production detector.
pub fn run(seed: u64, trace: Option<TraceSink>) -> RunReport {
    run_with::<PingDetector>(seed, DetectorConfig::default(), trace)
}

/// One seed with any detector and configuration (used to plant bugs).
pub fn run_with<D: Detector + 'static>(seed: u64, detector: DetectorConfig, trace: Option<TraceSink>) -> RunReport {
    let mut config = SimConfig::new(seed, NODES);
    config.link = LinkConfig { latency: Dist::lan(), loss_probability: 0.01, duplicate_probability: 0.01 };
    let ids: Vec<NodeId> = (1..=NODES as u64).map(NodeId).collect();
    let members = ids.clone();
    let mut sim = Sim::new(config, move |_| Node::<D>::new(members.clone(), detector.clone()))
        .expect("the election scenario's configuration is valid");
    if let Some(sink) = trace {
        sim.set_trace(sink);
    }
    sim.add_safety("agreement when quiet", agreement_when_quiet::<D>());
    sim.add_safety("broadcast integrity", broadcast_integrity::<D>());
    sim.add_liveness("leader after healing", CONVERGE_WITHIN, HOLD_FOR, |sim| one_live_leader(sim));
    sim.run(scenario())
}

fn scenario<D: Detector + 'static>() -> Scenario<Node<D>> {
    let mut s = Scenario::new();
    let setup = s.add(Process::new("setup", 1, Dist::ZERO, |sim: &mut Sim<Node<D>>, rng: &mut ChaCha8Rng, _| {
        actions::randomize_clocks(secs(10), 500)(sim, rng, 0);
        make_far_nodes(sim, rng);
    }));
    let boot = s.add(Process::new("boot", NODES as u32, Dist::uniform(ms(0), ms(200)), actions::start_each()));
    let after_boot = |p: Process<Node<D>>| p.after_end_of(boot, secs(1));
    let faults: Vec<ProcId> = vec![
        s.add(after_boot(Process::new(
            "crash-restart",
            6,
            Dist::exponential(secs(4)),
            actions::crash_restart(Dist::uniform(ms(300), secs(3))),
        ))),
        s.add(after_boot(Process::new(
            "pause",
            6,
            Dist::exponential(secs(4)),
            actions::pause_one(Dist::uniform(ms(100), secs(2))),
        ))),
        s.add(after_boot(Process::new("partition", 6, Dist::exponential(secs(5)), any_partition()))),
        s.add(after_boot(Process::new(
            "clog",
            2,
            Dist::exponential(secs(10)),
            actions::swizzle(Dist::uniform(ms(50), ms(500))),
        ))),
        s.add(after_boot(Process::new("bad-disk-restart", 2, Dist::exponential(secs(10)), bad_disk_restart()))),
    ];
    let _ = setup;
    s.end_after(&faults, secs(1));
    s.on_heal(stop_losses);
    s
}

/// The global stabilisation time of partial synchrony: from the end of the
/// faults on, links stop losing and duplicating messages. Their latency stays
/// as it was (far nodes stay far), so the detector must still have adapted.
/// Without it, a burst of losses can make even a correct ◇P err at any finite
/// time, and no bounded liveness check could be met.
fn stop_losses<D: Detector + 'static>(sim: &mut Sim<Node<D>>) {
    let ids = sim.node_ids().to_vec();
    for &from in &ids {
        for &to in ids.iter().filter(|&&to| to != from) {
            let reliable =
                LinkConfig { loss_probability: 0.0, duplicate_probability: 0.0, ..sim.link_config(from, to).clone() };
            sim.set_link(from, to, reliable).expect("valid link");
        }
    }
}

/// One or two nodes get slow links to everyone, both ways, for the whole run.
fn make_far_nodes<D: Detector + 'static>(sim: &mut Sim<Node<D>>, rng: &mut ChaCha8Rng) {
    let slow =
        LinkConfig { latency: Dist::uniform(ms(100), ms(200)), loss_probability: 0.01, duplicate_probability: 0.01 };
    let mut ids = sim.node_ids().to_vec();
    ids.shuffle(rng);
    let far_len = rng.random_range(1..=2);
    for &far in &ids[..far_len] {
        for &other in sim.node_ids().to_vec().iter().filter(|&&n| n != far) {
            sim.set_link(far, other, slow.clone()).expect("valid link");
            sim.set_link(other, far, slow.clone()).expect("valid link");
        }
    }
}

type BoxedAction<C> = Box<dyn FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32)>;

/// A partition of a random kind, healed after a random hold.
pub fn any_partition<C: haven_runtime::Component + 'static>() -> impl FnMut(&mut Sim<C>, &mut ChaCha8Rng, u32) + 'static
{
    let hold = Dist::uniform(ms(500), secs(4));
    let mut kinds: Vec<BoxedAction<C>> = vec![
        Box::new(actions::split_majority_minority(hold.clone())),
        Box::new(actions::bridge(hold.clone())),
        Box::new(actions::isolate_one(hold.clone())),
        Box::new(actions::block_one_way(hold)),
    ];
    move |sim, rng, i| {
        let kind = rng.random_range(0..kinds.len());
        (kinds[kind])(sim, rng, i)
    }
}

/// Crashes a running node and restarts it onto a disk that is full or
/// corrupts reads, for a while: boot must report, retry, or halt loudly.
fn bad_disk_restart<D: Detector + 'static>() -> impl FnMut(&mut Sim<Node<D>>, &mut ChaCha8Rng, u32) + 'static {
    |sim, rng, _| {
        let up: Vec<NodeId> = sim.node_ids().iter().copied().filter(|&n| sim.is_up(n)).collect();
        let Some(&node) = up.get(rng.random_range(0..up.len().max(1))) else { return };
        let full = rng.random_bool(0.5);
        sim.crash(node);
        if full {
            sim.disk_full(node, true);
        } else {
            sim.corrupt_reads(node, 0.3);
        }
        let restart_after = Dist::uniform(ms(100), secs(1)).sample(rng);
        sim.after(restart_after, move |sim, _| sim.restart(node));
        let clear_after = restart_after + Dist::uniform(ms(500), secs(3)).sample(rng);
        sim.after(clear_after, move |sim, _| {
            sim.disk_full(node, false);
            sim.corrupt_reads(node, 0.0);
        });
    }
}

/// Nodes that are up, booted and not halted: the ones that must agree.
fn running<D: Detector + 'static>(sim: &Sim<Node<D>>) -> Vec<NodeId> {
    let booted = |n: &NodeId| sim.component(*n).and_then(|c| c.leader()).is_some();
    sim.node_ids().iter().copied().filter(|n| sim.is_up(*n) && booted(n)).collect()
}

fn leader_of<D: Detector + 'static>(sim: &Sim<Node<D>>, node: NodeId) -> Option<NodeId> {
    sim.component(node).and_then(|c| c.leader())
}

/// Groups of running nodes that are connected (either way); a group counts
/// as cleanly separated only if every pair in it is connected both ways.
fn clean_groups<D: Detector + 'static>(sim: &Sim<Node<D>>, nodes: &[NodeId]) -> Vec<Vec<NodeId>> {
    let mut group_of: BTreeMap<NodeId, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    for &a in nodes {
        for &b in nodes {
            if a < b && (sim.link_open(a, b) || sim.link_open(b, a)) {
                let (ga, gb) = (group_of[&a], group_of[&b]);
                for g in group_of.values_mut().filter(|g| **g == gb) {
                    *g = ga;
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<NodeId>> = BTreeMap::new();
    for (node, g) in group_of {
        groups.entry(g).or_default().push(node);
    }
    let clique = |g: &Vec<NodeId>| g.iter().all(|&a| g.iter().all(|&b| a == b || sim.link_open(a, b)));
    groups.into_values().filter(clique).collect()
}

/// Safety: once the faults and every detector have been quiet for [`QUIET`],
/// each clean group agrees on one leader from the group.
fn agreement_when_quiet<D: Detector + 'static>() -> impl FnMut(&Sim<Node<D>>) -> Result<(), String> + 'static {
    let mut last_view_change = SimTime::ZERO;
    move |sim| {
        let changed = sim.last_outputs().iter().any(|(_, out)| {
            matches!(
                out,
                ElectionEvent::Suspect { .. }
                    | ElectionEvent::Trust { .. }
                    | ElectionEvent::Leader { .. }
                    | ElectionEvent::Ready { .. }
            )
        });
        if changed {
            last_view_change = sim.now();
        }
        let quiet_since = last_view_change.max(sim.faults_changed_at());
        if sim.now().saturating_since(quiet_since) < QUIET {
            return Ok(());
        }
        for group in clean_groups(sim, &running(sim)) {
            let leaders: BTreeMap<NodeId, Option<NodeId>> = group.iter().map(|&n| (n, leader_of(sim, n))).collect();
            let first = leaders[&group[0]];
            let agreed = leaders.values().all(|l| *l == first) && first.is_some_and(|l| group.contains(&l));
            if !agreed {
                return Err(format!(
                    "group {group:?} has been connected and quiet for {:?} but trusts {leaders:?}",
                    sim.now().saturating_since(quiet_since)
                ));
            }
        }
        Ok(())
    }
}

/// Safety: every delivery of an announcement matches a broadcast (no
/// creation), and no node delivers one broadcast more often than it was made
/// (no duplication).
fn broadcast_integrity<D: Detector + 'static>() -> impl FnMut(&Sim<Node<D>>) -> Result<(), String> + 'static {
    let mut made: BTreeMap<(NodeId, u64), u64> = BTreeMap::new();
    let mut delivered: BTreeMap<(NodeId, NodeId, u64), u64> = BTreeMap::new();
    move |sim| {
        for (node, out) in sim.last_outputs() {
            match *out {
                ElectionEvent::Leader { leader } if leader == *node => {
                    let epoch = sim.component(*node).and_then(|c| c.epoch()).expect("a leader is running");
                    *made.entry((*node, epoch)).or_default() += 1;
                }
                ElectionEvent::Announced { from, epoch } => {
                    let count = delivered.entry((*node, from, epoch)).or_default();
                    *count += 1;
                    let sent = made.get(&(from, epoch)).copied().unwrap_or(0);
                    if *count > sent {
                        return Err(format!(
                            "{node} delivered {count} announcements of {from} epoch {epoch}, {sent} made"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Liveness: every live node is booted and trusts the same live leader.
fn one_live_leader<D: Detector + 'static>(sim: &Sim<Node<D>>) -> Result<(), String> {
    let halted = |n: NodeId| sim.component(n).is_some_and(|c| c.is_halted());
    let live: Vec<NodeId> = sim.node_ids().iter().copied().filter(|&n| sim.is_up(n) && !halted(n)).collect();
    let leaders: BTreeMap<NodeId, Option<NodeId>> = live.iter().map(|&n| (n, leader_of(sim, n))).collect();
    let distinct: BTreeSet<Option<NodeId>> = leaders.values().copied().collect();
    match distinct.into_iter().collect::<Vec<_>>()[..] {
        [Some(leader)] if live.contains(&leader) => Ok(()),
        _ => Err(format!("live nodes do not agree on a live leader: {leaders:?}")),
    }
}
