//! `haven sim bench-coordinator`: how long the coordinator's step takes on
//! a graph of ha-scale's shape, by node count.
//!
//! In: node counts and the number of steps to time. Out: one line per node
//! count with the median and worst step time (µs) for a steady-state
//! report (an agent saying again that an instance is active), a tick, and
//! one node's death (its singleton moves), each computed in place as the
//! station leader does (`step_batch`), and the total time to decide the
//! death of 1% of the nodes, one step per death and in the station's
//! batches, each step applied before the next.

use anyhow::{Result, bail};
use haven_ha::{
    Change, CoordinatorConfig, Event, Instance, InstanceId, InstanceState, Lease, Node, Role, Service, StateGraph,
    step_batch,
};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Events per step, as the station leader batches them (its
/// `STEP_EVENTS_LEN_MAX`).
const STEP_EVENTS_LEN_MAX: usize = 256;

pub fn run(nodes: &[u64], steps: u64) -> Result<()> {
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    println!("coordinator step time (µs) on ha-scale's shape: one instance per node, half singletons");
    for &n in nodes {
        if !(100..=100_000).contains(&n) {
            bail!("node counts must be between 100 and 100000, not {n}");
        }
        bench_one(n, steps);
    }
    Ok(())
}

fn bench_one(n: u64, steps: u64) {
    let mut graph = synthetic(n);
    let config = CoordinatorConfig { services_len_max: 100_000, ..CoordinatorConfig::default() };
    let now_ms = 1_000;
    let ids: Vec<(InstanceId, Option<u64>)> = graph.instances.values().map(|i| (i.id, i.token)).collect();
    let pick = |k: u64| ids[(k * 7_919 % ids.len() as u64) as usize];
    let steady = time_steps(steps, |k| {
        let (instance, token) = pick(k);
        step_batch(&mut graph, now_ms, &[Event::InstanceActive { instance, token }], &config)
    });
    let tick = time_steps(steps, |_| step_batch(&mut graph, now_ms, &[Event::Tick], &config));
    let singletons: Vec<NodeId> =
        graph.instances.values().filter(|i| i.service.starts_with('s')).map(|i| i.node).collect();
    let death = time_steps(steps, |k| {
        let node = singletons[(k * 7_919 % singletons.len() as u64) as usize];
        step_batch(&mut graph, now_ms, &[Event::LeaseExpired { node }], &config)
    });
    let deaths = (n / 100) as usize;
    let burst = burst(&graph, &config, &singletons, deaths);
    let batched = burst_batched(&graph, &config, &singletons, deaths);
    println!(
        "nodes={n} services={} steady p50={} max={} | tick p50={} max={} | death p50={} max={} | 1% deaths ({}) one step each total_ms={:.1}, \
         in batches of {STEP_EVENTS_LEN_MAX} total_ms={:.1}",
        graph.services.len(),
        steady.0,
        steady.1,
        tick.0,
        tick.1,
        death.0,
        death.1,
        n / 100,
        burst.as_secs_f64() * 1e3,
        batched.as_secs_f64() * 1e3
    );
}

/// Median and worst of `steps` timed steps, in µs.
fn time_steps(steps: u64, mut one: impl FnMut(u64) -> haven_ha::Step) -> (u128, u128) {
    let mut micros: Vec<u128> = (0..steps)
        .map(|k| {
            let start = Instant::now();
            let decided = one(k);
            let took = start.elapsed().as_micros();
            drop(decided);
            took
        })
        .collect();
    micros.sort();
    (micros[micros.len() / 2], micros[micros.len() - 1])
}

/// The deaths of `count` singleton nodes, decided and applied one by one.
fn burst(graph: &StateGraph, config: &CoordinatorConfig, singletons: &[NodeId], count: usize) -> Duration {
    let mut g = graph.clone();
    let start = Instant::now();
    for (k, node) in singletons.iter().step_by((singletons.len() / count.max(1)).max(1)).take(count).enumerate() {
        let decided = step_batch(&mut g, 1_000 + k as u64, &[Event::LeaseExpired { node: *node }], config);
        g.apply_step(&decided);
    }
    start.elapsed()
}

/// The same deaths decided as the station does: in batches, each applied.
fn burst_batched(graph: &StateGraph, config: &CoordinatorConfig, singletons: &[NodeId], count: usize) -> Duration {
    let mut g = graph.clone();
    let stride = (singletons.len() / count.max(1)).max(1);
    let events: Vec<Event> =
        singletons.iter().step_by(stride).take(count).map(|node| Event::LeaseExpired { node: *node }).collect();
    let start = Instant::now();
    for (k, batch) in events.chunks(STEP_EVENTS_LEN_MAX).enumerate() {
        let decided = step_batch(&mut g, 1_000 + k as u64, batch, config);
        g.apply_step(&decided);
    }
    start.elapsed()
}

/// `n` live nodes, the ha-scale services, one active instance on each node.
fn synthetic(n: u64) -> StateGraph {
    let mut g = StateGraph::new(1_000);
    for id in 1..=n {
        let node = Node {
            id: NodeId(id),
            address: format!("10.0.{}.{}:7000", id / 256, id % 256),
            labels: BTreeMap::new(),
            lease: Lease::Alive { expires_at_ms: u64::MAX },
            session: id as i64,
            drained: false,
            proxy: None,
        };
        g.apply(&Change::PutNode(node));
    }
    let mut slots = Vec::new();
    for spec in haven_scenarios::ha::scale::services(n) {
        let count = match spec.kind {
            haven_ha::ServiceKind::Replicated { count } => count,
            _ => 1,
        };
        slots.extend((0..count).map(|_| spec.name.clone()));
        g.apply(&Change::PutService(Box::new(Service::new(spec))));
    }
    for (k, service) in slots.into_iter().enumerate() {
        let k = k as u64 + 1;
        let instance = Instance {
            id: InstanceId(k),
            service,
            node: NodeId(k),
            role: Role::Primary,
            state: InstanceState::Active,
            token: Some(k),
            since_ms: 0,
            restarts_ms: Vec::new(),
            command: None,
            end: None,
        };
        g.apply(&Change::PutInstance(instance));
    }
    g
}
