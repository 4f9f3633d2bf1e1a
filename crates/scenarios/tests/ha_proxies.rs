//! Proxies in the `ha-failover` cluster (3 replicas, 20 agents, 2 proxies):
//! the agents' keep-alives and reports go mostly through the proxies, even
//! under the scenario's faults; and when a proxy dies, its agents keep
//! their leases (they talk to the stations meanwhile) and move to the
//! other proxy once its lease expired. Every failure names its seed and the
//! replay command.

use haven_ha::StateGraph;
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_scenarios::ha::agent::AgentEvent;
use haven_scenarios::ha::failover::{self, agent_ids, proxy_ids};
use haven_scenarios::ha::fence::TokenFence;
use haven_scenarios::kv::node::{KvNode, KvOut};
use haven_sim::Sim;
use haven_station::Replica;
use std::collections::BTreeMap;
use std::time::Duration;

fn replay(seed: u64) -> String {
    format!("seed {seed}; replay with `haven sim run --scenario ha-failover --seed {seed} --trace`")
}

/// For the tests that drive the scenario's cluster by hand.
fn rerun(seed: u64, test: &str) -> String {
    format!("seed {seed}; rerun with `cargo test --release -p haven-scenarios --test scenarios ha_proxies::{test}`")
}

/// The graph of the replica leading in the highest term.
fn leader_graph(sim: &Sim<KvNode>) -> StateGraph {
    let replicas = (1..=3).filter_map(|n| sim.component(NodeId(n)).and_then(KvNode::replica));
    let leading = replicas.filter(|r| r.raft().is_some_and(|raft| raft.role() == Role::Leader));
    let best = leading.max_by_key(|r| r.raft().map(|raft| raft.term())).expect("a leader");
    best.state_machine().expect("running").ha().graph.clone()
}

/// Each running agent's proxy, as the agent last heard it.
fn assignments(sim: &Sim<KvNode>) -> BTreeMap<u64, Option<NodeId>> {
    let agents = agent_ids().filter(|&n| sim.is_up(NodeId(n)));
    agents.filter_map(|n| Some((n, sim.component(NodeId(n))?.agent()?.assigned_proxy()))).collect()
}

#[test]
fn while_the_proxies_are_up_agents_talk_to_them_and_not_to_the_stations() {
    for seed in 0..4 {
        let mut sim = failover::build(seed, Replica::new, TokenFence::boxed);
        for node in sim.node_ids().to_vec() {
            sim.start(node);
        }
        sim.run_for(Duration::from_secs(10));
        let before = failover::proxy_figures(&sim);
        sim.run_for(Duration::from_secs(10));
        let after = failover::proxy_figures(&sim);
        let (direct, proxied) = (after.direct - before.direct, after.proxied - before.proxied);
        let batches = after.batches - before.batches;
        println!("seed {seed}, 10 s without faults: {direct} direct, {proxied} proxied in {batches} batches");
        let test = "while_the_proxies_are_up";
        // What stays direct: joins repeated until a first command, session
        // set-up after a lease was lost, questions while unassigned.
        assert!(direct * 10 <= proxied, "{}: {direct} direct, {proxied} proxied", rerun(seed, test));
        assert!(batches * 2 <= proxied, "{}: {batches} batches for {proxied} messages", rerun(seed, test));
    }
}

/// Reported, not bounded: under faults agents fall back to the stations
/// whenever their proxy is down or cut off, and new sessions start there.
#[test]
fn the_proxies_carry_most_of_the_agents_traffic_under_faults() {
    let mut totals = failover::ProxyFigures::default();
    for seed in 0..6 {
        let (report, figures) = failover::run_figures(seed);
        assert!(report.is_ok(), "{}: {}", replay(seed), report.line());
        println!("seed {seed}: {figures:?}");
        totals.direct += figures.direct;
        totals.proxied += figures.proxied;
        totals.batches += figures.batches;
    }
    println!("seeds 0..6: {totals:?}");
    assert!(totals.batches < totals.proxied, "a batch carries more than one message on average: {totals:?}");
}

#[test]
fn agents_of_a_dead_proxy_keep_their_leases_and_move_to_the_other() {
    for seed in 0..4 {
        proxy_death(seed);
    }
}

fn proxy_death(seed: u64) {
    let test = "agents_of_a_dead_proxy";
    let mut sim = failover::build(seed, Replica::new, TokenFence::boxed);
    for node in sim.node_ids().to_vec() {
        sim.start(node);
    }
    sim.run_for(Duration::from_secs(10));
    let before = assignments(&sim);
    assert!(
        before.values().all(Option::is_some),
        "{}: every agent has a proxy after 10 s: {before:?}",
        rerun(seed, test)
    );
    let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
    before.values().flatten().for_each(|p| *load.entry(*p).or_default() += 1);
    let (&dead, _) = load.iter().max_by_key(|(_, n)| **n).expect("a proxy serves");
    let other = NodeId(proxy_ids().find(|&p| NodeId(p) != dead).expect("two proxies"));
    let moved: Vec<u64> = before.iter().filter(|(_, p)| **p == Some(dead)).map(|(n, _)| *n).collect();
    sim.crash(dead);
    let until = sim.now() + Duration::from_secs(12);
    while sim.now() < until && sim.step() {
        for (node, out) in sim.last_outputs() {
            if let KvOut::Agent(AgentEvent::SessionEnded { .. } | AgentEvent::SelfFenced { .. }) = out {
                panic!("{}: {node} lost its lease after its proxy {dead} died: {out:?}", rerun(seed, test));
            }
        }
    }
    let after = assignments(&sim);
    let graph = leader_graph(&sim);
    for agent in moved {
        assert_eq!(after.get(&agent), Some(&Some(other)), "{}: n{agent} did not move to {other}", rerun(seed, test));
        let recorded = graph.nodes[&NodeId(agent)].proxy;
        assert_eq!(recorded, Some(other.0), "{}: the graph has n{agent} on {recorded:?}", rerun(seed, test));
    }
}
