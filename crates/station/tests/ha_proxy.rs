//! Proxies at the station, on a simulated cluster: n1..n3 replicas, n4 and
//! n5 agents and n7 a proxy, all probes the test speaks for. The checks:
//! the coordinator assigns both agents to the proxy once it joined; one
//! batch renews the agents' leases (and says an unknown lease is gone),
//! queues its reports in one log entry, and is answered with one message;
//! leases renewed only through batches keep their nodes alive; a follower
//! answers with the leader's id; a step's commands for proxied agents reach
//! the proxy in one message and not the agents; any replica names an
//! agent's proxy (`ProxyPlaceQuery`).

use crate::common;

use common::{TestNode, cluster_with_probes, inbox, ms};
use haven_ha::{
    BatchAnswer, BatchLease, BatchOutcome, Event, InstanceId, OperatorAction, ProxyBatch, Renewal, ServiceKind,
    ServiceSpec,
};
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::command::Command;
use haven_station::{ClientRequest, HaReport, Replica, StationMsg};
use haven_store::{LeaseGrantRequest, LeaseId, Request, Response};
use std::collections::BTreeMap;

const PROXY: u64 = 7;
const TTL_SECONDS: i64 = 2;

fn replica(sim: &Sim<TestNode>, node: u64) -> &Replica {
    match sim.component(NodeId(node)) {
        Some(TestNode::Replica(r)) => r,
        _ => panic!("n{node} is a replica"),
    }
}

fn leader(sim: &Sim<TestNode>) -> u64 {
    (1..=3).find(|&n| replica(sim, n).raft().is_some_and(|r| r.role() == Role::Leader)).expect("a leader")
}

fn answers(sim: &Sim<TestNode>) -> Vec<BatchAnswer> {
    let answer = |msg: &StationMsg| match msg {
        StationMsg::ProxyAnswer(answer) => Some(answer.clone()),
        _ => None,
    };
    inbox(sim, PROXY).iter().filter_map(answer).collect()
}

fn join(sim: &mut Sim<TestNode>, node: u64, labels: &[(&str, &str)]) -> LeaseId {
    let to = NodeId(leader(sim));
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: TTL_SECONDS, id: 0 });
    sim.inject(to, NodeId(node), StationMsg::Request(ClientRequest { client: node, seq: 1, request: grant }));
    sim.run_for(ms(300));
    let granted = inbox(sim, node).iter().find_map(|msg| match msg {
        StationMsg::Reply(reply) => match &reply.result {
            Ok(Response::LeaseGrant(granted)) => Some(granted.id),
            _ => None,
        },
        _ => None,
    });
    let lease = granted.unwrap_or_else(|| panic!("n{node} got no lease"));
    let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let join = HaReport::Join { node: NodeId(node), address: format!("10.0.0.{node}:7000"), labels, lease };
    sim.inject(to, NodeId(node), StationMsg::HaReport(join));
    lease
}

/// The proxy's batch renewing `leases`, reporting `reports`, sent to `to`.
fn batch(sim: &mut Sim<TestNode>, to: u64, seq: u64, leases: &[(u64, LeaseId)], reports: Vec<Event>) {
    let leases = leases.iter().map(|&(agent, lease)| BatchLease { agent: NodeId(agent), lease }).collect();
    let batch = ProxyBatch { seq, leases, reports };
    sim.inject(NodeId(to), NodeId(PROXY), StationMsg::ProxyBatch(batch));
}

/// The HaEvents entries in the leader's log from `from` on.
fn event_entries(sim: &Sim<TestNode>, from: u64) -> Vec<Vec<Event>> {
    let raft = replica(sim, leader(sim)).raft().expect("running");
    let entries = (from..=raft.last_log().index).filter_map(|i| raft.entry(i));
    let commands = entries.filter_map(|e| match e.kind() {
        Ok(haven_raft::EntryKind::Command(bytes)) => Command::decode(bytes).ok(),
        _ => None,
    });
    let events = commands.filter_map(|c| match c {
        Command::HaEvents { events } => Some(events),
        _ => None,
    });
    events.collect()
}

/// A cluster with agents n4, n5 and proxy n7 joined and assigned.
fn with_proxy(seed: u64) -> (Sim<TestNode>, Vec<(u64, LeaseId)>) {
    let mut sim = cluster_with_probes(seed, &[4, 5, PROXY]);
    let proxy_lease = join(&mut sim, PROXY, &[("haven.role", "proxy")]);
    let leases = vec![(4, join(&mut sim, 4, &[("tier", "app")])), (5, join(&mut sim, 5, &[("tier", "app")]))];
    let mut all = leases.clone();
    all.push((PROXY, proxy_lease));
    renew_directly(&mut sim, &all, 0);
    sim.run_for(ms(500));
    (sim, leases)
}

/// Keep-alives straight from each holder (the proxy renews its own so).
fn renew_directly(sim: &mut Sim<TestNode>, holders: &[(u64, LeaseId)], round: u64) {
    let to = NodeId(leader(sim));
    for &(node, lease) in holders {
        let request = haven_station::KeepAliveRequest { client: node, seq: 100 + round, lease };
        sim.inject(to, NodeId(node), StationMsg::KeepAlive(request));
    }
}

#[test]
fn the_stations_assign_agents_to_the_live_proxy() {
    let (sim, _) = with_proxy(1);
    let graph = &replica(&sim, leader(&sim)).state_machine().expect("running").ha().graph;
    let proxies: Vec<(u64, Option<u64>)> = graph.nodes.values().map(|n| (n.id.0, n.proxy)).collect();
    assert_eq!(proxies, [(4, Some(PROXY)), (5, Some(PROXY)), (PROXY, None)]);
    let decisions: Vec<&str> = graph.decisions.iter().map(|d| d.text.as_str()).collect();
    assert!(decisions.contains(&"assigned nodes to proxies: 1 to n7"), "{decisions:?}");
}

#[test]
fn one_batch_renews_its_leases_and_queues_its_reports_in_one_entry() {
    let (mut sim, leases) = with_proxy(2);
    let to = leader(&sim);
    let first = replica(&sim, to).raft().expect("running").last_log().index + 1;
    let reports = vec![
        Event::InstanceActive { instance: InstanceId(90), token: None },
        Event::InstanceActive { instance: InstanceId(91), token: None },
    ];
    let mut with_unknown = leases.clone();
    with_unknown.push((6, 999));
    batch(&mut sim, to, 1, &with_unknown, reports.clone());
    sim.run_for(ms(200));
    let renewed = Renewal::Renewed { ttl_seconds: TTL_SECONDS };
    let expected = BatchAnswer {
        seq: 1,
        outcome: BatchOutcome::Done {
            renewals: vec![(leases[0].1, renewed), (leases[1].1, renewed), (999, Renewal::NotFound)],
            reports_proposed: true,
            moved: vec![],
        },
    };
    assert_eq!(answers(&sim), [expected], "one answer for the whole batch");
    assert_eq!(event_entries(&sim, first), [reports], "both reports in one entry");
}

#[test]
fn leases_renewed_only_through_batches_keep_their_nodes_alive() {
    let (mut sim, leases) = with_proxy(3);
    for round in 0..16u64 {
        let to = leader(&sim);
        batch(&mut sim, to, 10 + round, &leases, vec![]);
        let proxy_lease =
            replica(&sim, leader(&sim)).state_machine().expect("running").ha().graph.nodes[&NodeId(PROXY)].session;
        renew_directly(&mut sim, &[(PROXY, proxy_lease)], round + 1);
        sim.run_for(ms(500));
    }
    let graph = &replica(&sim, leader(&sim)).state_machine().expect("running").ha().graph;
    let now_ms = replica(&sim, leader(&sim)).state_machine().expect("running").ha().time_ms_last();
    for node in [4, 5, PROXY] {
        assert!(graph.nodes[&NodeId(node)].is_alive(now_ms), "n{node} died after 8 s of batched renewals");
    }
    let done = answers(&sim).iter().filter(|a| matches!(a.outcome, BatchOutcome::Done { .. })).count();
    assert_eq!(done, 16);
}

#[test]
fn a_follower_refuses_a_batch_naming_the_leader() {
    let (mut sim, leases) = with_proxy(4);
    let lead = leader(&sim);
    let follower = (1..=3).find(|&n| n != lead).expect("a follower");
    batch(&mut sim, follower, 5, &leases, vec![]);
    sim.run_for(ms(100));
    let refused = BatchAnswer { seq: 5, outcome: BatchOutcome::NotLeader { leader_hint: Some(NodeId(lead)) } };
    assert_eq!(answers(&sim), [refused]);
}

#[test]
fn a_steps_commands_for_proxied_agents_go_to_the_proxy_in_one_message() {
    let (mut sim, _) = with_proxy(5);
    let mut spec = ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 2 });
    spec.start_timeout_ms = 3_000;
    spec.placement.labels = BTreeMap::from([("tier".to_string(), "app".to_string())]);
    let add = HaReport::Event(Event::Operator(OperatorAction::AddService(Box::new(spec))));
    sim.inject(NodeId(leader(&sim)), NodeId(9), StationMsg::HaReport(add));
    sim.run_for(ms(300));
    let proxied: Vec<Vec<String>> = (inbox(&sim, PROXY).iter())
        .filter_map(|msg| match msg {
            StationMsg::ProxyCommands(commands) => Some(commands.iter().map(|c| c.to_string()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(proxied.first().map(Vec::len), Some(2), "{proxied:?}");
    assert!(proxied[0].iter().all(|c| c.contains("start") && c.contains("web")), "{proxied:?}");
    for agent in [4, 5] {
        let direct = inbox(&sim, agent).iter().filter(|m| matches!(m, StationMsg::Agent(_))).count();
        assert_eq!(direct, 0, "n{agent} got commands directly");
    }
}

#[test]
fn any_replica_names_an_agents_live_proxy_from_its_graph() {
    let (mut sim, _) = with_proxy(6);
    let follower = (1..=3).find(|&n| n != leader(&sim)).expect("a follower");
    let ask = |sim: &mut Sim<TestNode>, seq, node| match common::ask(
        sim,
        NodeId(follower),
        StationMsg::ProxyPlaceQuery { client: 9, seq, node: NodeId(node) },
    ) {
        StationMsg::ProxyPlace { client: 9, seq: answered, place } if answered == seq => place,
        other => panic!("expected a ProxyPlace for seq {seq}, got {other:?}"),
    };
    // n7 joined without a URL label (a node labelled by hand): named, no URL.
    assert_eq!(ask(&mut sim, 1, 4), Some((NodeId(PROXY), None)));
    assert_eq!(ask(&mut sim, 2, PROXY), None, "a proxy reports to the stations");
    assert_eq!(ask(&mut sim, 3, 42), None, "an unknown node has none");
}
