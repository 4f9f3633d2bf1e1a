//! External fencing on a simulated station: n1..n3 replicas configured with
//! a fence policy (fence after 500 ms of silence, lease TTL 2 s), n4..n6
//! agents the test speaks for, n9 the operator. The test plays the fence
//! device: it sees the leader's `FenceRequested` outputs and answers with
//! `FenceResult`. Checks: a silent agent holding a singleton is fenced once
//! fence_after has passed and not before; a confirmation moves the singleton
//! before the lease could have expired; a failure is retried up to the
//! bound; a confirmation for another session changes nothing.

use crate::common;

use common::{TestNode, inbox, ms};
use haven_ha::{
    Action, AgentCommand, Event, InstanceState, Lease, OperatorAction, ServiceKind, ServiceSpec, StateGraph,
};
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::{Sim, SimConfig, SimTime};
use haven_station::{
    ClientRequest, FenceConfig, HaReport, KeepAliveRequest, Replica, ReplicaConfig, ReplicaEvent, StationMsg,
};
use haven_store::{LeaseGrantRequest, LeaseId, Request, Response};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

const OPERATOR: NodeId = NodeId(9);
const TTL_SECONDS: i64 = 2;
const FENCE_AFTER_MS: u64 = 500;

/// Fence requests seen so far: (time, leader, node, session, attempt).
type Requests = Rc<RefCell<Vec<(SimTime, NodeId, NodeId, i64, u32)>>>;

fn fence_config() -> FenceConfig {
    FenceConfig {
        attempt_timeout: ms(400),
        retry_interval: ms(100),
        attempts_max: 3,
        ..FenceConfig::new(ms(FENCE_AFTER_MS))
    }
}

fn cluster(seed: u64) -> (Sim<TestNode>, Requests) {
    let voters: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let factory = move |id: NodeId| match id {
        NodeId(1..=3) => {
            let mut config = ReplicaConfig::new(voters.clone());
            config.fence = Some(fence_config());
            TestNode::Replica(Box::new(Replica::new(config)))
        }
        _ => TestNode::Probe(Vec::new()),
    };
    let mut sim = Sim::new(SimConfig::new(seed, 9), factory).expect("valid configuration");
    let requests: Requests = Rc::default();
    let seen = requests.clone();
    sim.add_safety("collect fence requests", move |sim| {
        for (from, out) in sim.last_outputs() {
            if let ReplicaEvent::FenceRequested { node, session, attempt, .. } = out {
                seen.borrow_mut().push((sim.now(), *from, *node, *session, *attempt));
            }
        }
        Ok(())
    });
    for node in [1, 2, 3, 4, 5, 6, 9] {
        sim.start(NodeId(node));
    }
    sim.run_for(ms(3_000));
    (sim, requests)
}

fn leader(sim: &Sim<TestNode>) -> NodeId {
    let leads = |n: NodeId| matches!(sim.component(n), Some(TestNode::Replica(r)) if r.raft().is_some_and(|r| r.role() == Role::Leader));
    (1..=3).map(NodeId).find(|&n| sim.is_up(n) && leads(n)).expect("a leader")
}

fn graph(sim: &Sim<TestNode>) -> StateGraph {
    match sim.component(leader(sim)) {
        Some(TestNode::Replica(r)) => r.state_machine().expect("running").ha().graph.clone(),
        _ => unreachable!("the leader is a replica"),
    }
}

/// `agent` is granted a lease and joins with it.
fn join(sim: &mut Sim<TestNode>, agent: u64, seq: u64) -> LeaseId {
    let before = inbox(sim, agent).len();
    let to = leader(sim);
    let request = Request::LeaseGrant(LeaseGrantRequest { ttl: TTL_SECONDS, id: 0 });
    sim.inject(to, NodeId(agent), StationMsg::Request(ClientRequest { client: agent, seq, request }));
    sim.run_for(ms(300));
    let granted = inbox(sim, agent)[before..].iter().find_map(|msg| match msg {
        StationMsg::Reply(reply) => match &reply.result {
            Ok(Response::LeaseGrant(granted)) => Some(granted.id),
            _ => None,
        },
        _ => None,
    });
    let lease = granted.unwrap_or_else(|| panic!("n{agent} was granted no lease"));
    let address = format!("10.0.0.{agent}:7000");
    let report = HaReport::Join { node: NodeId(agent), address, labels: BTreeMap::new(), lease };
    sim.inject(to, NodeId(agent), StationMsg::HaReport(report));
    lease
}

/// Runs `duration_ms` in 10 ms steps; the agents in `alive` renew every 250 ms.
fn run(sim: &mut Sim<TestNode>, duration_ms: u64, alive: &[(u64, LeaseId)]) {
    for step in 0..duration_ms / 10 {
        if step % 25 == 0 {
            let to = leader(sim);
            for &(agent, lease) in alive {
                let request = KeepAliveRequest { client: agent, seq: step, lease };
                sim.inject(to, NodeId(agent), StationMsg::KeepAlive(request));
            }
        }
        sim.run_for(ms(10));
    }
}

fn db() -> ServiceSpec {
    let mut spec = ServiceSpec::new("db", "/usr/bin/db", ServiceKind::Singleton { standbys: 0 });
    spec.placement.preferred = vec![NodeId(4), NodeId(5)];
    spec
}

fn starts(sim: &Sim<TestNode>, agent: u64) -> Vec<AgentCommand> {
    let start = |msg: &StationMsg| match msg {
        StationMsg::Agent(c @ AgentCommand { action: Action::Start { .. }, .. }) => Some(c.clone()),
        _ => None,
    };
    inbox(sim, agent).iter().filter_map(start).collect()
}

/// n4..n6 joined, db placed on n4 and active there; returns the leases.
fn db_on_n4(seed: u64) -> (Sim<TestNode>, Requests, Vec<(u64, LeaseId)>) {
    let (mut sim, requests) = cluster(seed);
    let leases: Vec<(u64, LeaseId)> = [4, 5, 6].iter().map(|&a| (a, join(&mut sim, a, 1))).collect();
    run(&mut sim, 500, &leases);
    let to = leader(&sim);
    let add = HaReport::Event(Event::Operator(OperatorAction::AddService(Box::new(db()))));
    sim.inject(to, OPERATOR, StationMsg::HaReport(add));
    run(&mut sim, 500, &leases);
    let start = starts(&sim, 4).pop().expect("db started on n4");
    let token = start.token();
    for event in [
        Event::CommandDone { command: start.id },
        Event::InstanceStarted { instance: start.instance, token },
        Event::InstanceActive { instance: start.instance, token },
    ] {
        sim.inject(leader(&sim), NodeId(4), StationMsg::HaReport(HaReport::Event(event)));
    }
    run(&mut sim, 500, &leases);
    assert!(graph(&sim).instances.values().any(|i| i.node == NodeId(4) && i.state == InstanceState::Active));
    assert!(requests.borrow().is_empty(), "nobody is silent yet: {:?}", requests.borrow());
    (sim, requests, leases)
}

#[test]
fn a_silent_holder_is_fenced_after_fence_after_and_its_singleton_moves_before_the_lease_expires() {
    let (mut sim, requests, leases) = db_on_n4(11);
    let silent_from = sim.now();
    let survivors = leases[1..].to_vec();
    run(&mut sim, 600, &survivors);
    let first = requests.borrow().first().copied().expect("n4 was fenced");
    let (at, from, node, session, attempt) = first;
    assert_eq!((from, node, session, attempt), (leader(&sim), NodeId(4), leases[0].1, 1));
    let silence = at.saturating_since(silent_from);
    // n4's last renewal was at most 250 ms before it went silent.
    assert!(silence >= ms(FENCE_AFTER_MS - 250) && silence < ms(FENCE_AFTER_MS + 100), "fenced after {silence:?}");
    assert_eq!(requests.borrow().len(), 1, "one request while it runs: {:?}", requests.borrow());
    assert!(starts(&sim, 5).is_empty(), "no move before the fence is confirmed");

    let to = leader(&sim);
    sim.inject(to, to, StationMsg::FenceResult { node: NodeId(4), session, fenced: true });
    run(&mut sim, 300, &survivors);
    let moved: Vec<_> = starts(&sim, 5).iter().map(|c| c.instance).collect();
    assert!(!moved.is_empty() && moved.iter().all(|i| *i == moved[0]), "db started on n5 once: {moved:?}");
    let lease_expires = silent_from + Duration::from_secs(TTL_SECONDS as u64);
    assert!(sim.now() < lease_expires, "before n4's lease could have expired");
    let g = graph(&sim);
    let on_n4: Vec<_> = g.instances_on(NodeId(4)).map(|i| i.state).collect();
    assert_eq!(on_n4, [InstanceState::Fenced]);
    let decisions: Vec<String> = g.decisions.iter().map(|d| d.to_string()).collect();
    assert!(
        decisions.iter().any(|d| d.contains(": moved db from n4 to n5: n4 was fenced at ")),
        "the decision says why: {decisions:#?}"
    );
}

#[test]
fn a_failed_fence_is_retried_up_to_the_bound_and_the_lease_expiry_still_moves_the_singleton() {
    let (mut sim, requests, leases) = db_on_n4(12);
    let survivors = leases[1..].to_vec();
    for _ in 0..60 {
        run(&mut sim, 50, &survivors);
        let last = requests.borrow().last().copied();
        if let Some((_, from, node, session, attempt)) = last.filter(|r| r.4 < 3) {
            // The device fails the first attempt, and never answers the second.
            if attempt == 1 {
                sim.inject(from, from, StationMsg::FenceResult { node, session, fenced: false });
            }
        }
    }
    let attempts: Vec<u32> = requests.borrow().iter().map(|r| r.4).collect();
    assert_eq!(attempts, [1, 2, 3], "retried after a failure and a timeout, then given up");
    run(&mut sim, 2_000, &survivors);
    assert_eq!(requests.borrow().len(), 3, "no attempt beyond attempts_max");
    let moved: Vec<_> = starts(&sim, 5).iter().map(|c| c.instance).collect();
    assert!(!moved.is_empty() && moved.iter().all(|i| *i == moved[0]), "the lease's expiry moved db: {moved:?}");
}

#[test]
fn a_confirmation_for_an_old_session_does_not_end_the_new_one() {
    let (mut sim, requests, leases) = db_on_n4(13);
    let survivors = leases[1..].to_vec();
    run(&mut sim, 800, &survivors);
    let (_, _, _, old_session, _) = requests.borrow().first().copied().expect("n4 was fenced");
    // n4 reboots before its fence is confirmed and joins with a new session.
    let new_lease = join(&mut sim, 4, 2);
    let mut alive = survivors.clone();
    alive.push((4, new_lease));
    run(&mut sim, 300, &alive);
    assert_eq!(graph(&sim).nodes[&NodeId(4)].session, new_lease);
    let to = leader(&sim);
    sim.inject(to, to, StationMsg::FenceResult { node: NodeId(4), session: old_session, fenced: true });
    run(&mut sim, 300, &alive);
    let g = graph(&sim);
    assert!(matches!(g.nodes[&NodeId(4)].lease, Lease::Alive { .. }), "n4's new session lives on");
    let fenced = g.decisions.iter().any(|d| d.to_string().contains("fence of n4 confirmed"));
    assert!(!fenced, "no decision about the old session's fence");
}
