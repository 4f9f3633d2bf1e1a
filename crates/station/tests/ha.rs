//! The coordinator inside the station, on a simulated cluster: n1..n3 are
//! replicas, n4..n6 agents that only record what they are told (the test
//! speaks for them), n9 the operator. Agents join with a store lease they
//! keep alive; the operator adds a singleton preferring n4, then n5. The
//! checks: the first start goes to n4 with a fencing token once the
//! decision is committed; when n4 stops renewing its lease, the singleton
//! is started on n5 with a greater token, and only after n4's lease was
//! revoked through the log; a leader crash loses no queued event and the
//! new leader carries on.

use crate::common;

use common::{TestNode, cluster_with_probes, cluster_with_probes_and, inbox, ms};
use haven_ha::{Action, AgentCommand, Event, OperatorAction, ServiceKind, ServiceSpec};
use haven_raft::Role;
use haven_runtime::NodeId;
use haven_sim::Sim;
use haven_station::{
    ClientRequest, CommandsOf, HaReport, HaRequest, HaView, KeepAliveRequest, ReplicaEvent, StationMsg,
};
use haven_store::{LeaseGrantRequest, LeaseId, Request, Response};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

const OPERATOR: NodeId = NodeId(9);
const AGENTS: [u64; 3] = [4, 5, 6];
const TTL_SECONDS: i64 = 2;

fn leader(sim: &Sim<TestNode>) -> NodeId {
    let leads = |n: &u64| {
        sim.is_up(NodeId(*n))
            && matches!(sim.component(NodeId(*n)), Some(TestNode::Replica(r)) if r.raft().is_some_and(|r| r.role() == Role::Leader))
    };
    (1..=3).find(leads).map(NodeId).expect("a leader was elected")
}

fn commands(sim: &Sim<TestNode>, node: u64) -> Vec<AgentCommand> {
    let agent = |msg: &StationMsg| match msg {
        StationMsg::Agent(command) => Some(command.clone()),
        _ => None,
    };
    inbox(sim, node).iter().filter_map(agent).collect()
}

/// Starts of `service` sent to `node`, with their tokens.
fn starts(sim: &Sim<TestNode>, node: u64, service: &str) -> Vec<Option<u64>> {
    let start = |c: &AgentCommand| match &c.action {
        Action::Start { spec, token, .. } if spec.name == service => Some(*token),
        _ => None,
    };
    commands(sim, node).iter().filter_map(start).collect()
}

/// The agent grants itself a lease and joins with it.
fn join(sim: &mut Sim<TestNode>, agent: u64) -> LeaseId {
    let before = inbox(sim, agent).len();
    let grant = Request::LeaseGrant(LeaseGrantRequest { ttl: TTL_SECONDS, id: 0 });
    let to = leader(sim);
    sim.inject(to, NodeId(agent), StationMsg::Request(ClientRequest { client: agent, seq: 1, request: grant }));
    sim.run_for(ms(300));
    let lease = inbox(sim, agent)[before..].iter().find_map(|msg| match msg {
        StationMsg::Reply(reply) => match &reply.result {
            Ok(Response::LeaseGrant(granted)) => Some(granted.id),
            other => panic!("grant for n{agent}: {other:?}"),
        },
        _ => None,
    });
    let lease = lease.unwrap_or_else(|| panic!("n{agent} got no lease"));
    let report =
        HaReport::Join { node: NodeId(agent), address: format!("10.0.0.{agent}:7000"), labels: BTreeMap::new(), lease };
    sim.inject(to, NodeId(agent), StationMsg::HaReport(report));
    lease
}

/// Runs `duration`, the agents in `alive` renewing their leases every 500 ms.
fn run_renewing(sim: &mut Sim<TestNode>, duration_ms: u64, alive: &[(u64, LeaseId)]) {
    for round in 0..duration_ms / 500 {
        renew(sim, alive, round);
        sim.run_for(ms(500));
    }
}

/// Each agent of `alive` sends a keep-alive to the leader, or to any running
/// replica while there is none (which refuses it, as a real agent would see).
fn renew(sim: &mut Sim<TestNode>, alive: &[(u64, LeaseId)], round: u64) {
    let leads = |n: u64| matches!(sim.component(NodeId(n)), Some(TestNode::Replica(r)) if r.raft().is_some_and(|r| r.role() == Role::Leader));
    let up: Vec<u64> = (1..=3).filter(|&n| sim.is_up(NodeId(n))).collect();
    let to = up.iter().copied().find(|&n| leads(n)).or(up.first().copied()).map(NodeId).expect("a replica runs");
    for &(agent, lease) in alive {
        let request = KeepAliveRequest { client: agent, seq: 1_000 + round, lease };
        sim.inject(to, NodeId(agent), StationMsg::KeepAlive(request));
    }
}

fn operator(sim: &mut Sim<TestNode>, action: OperatorAction) {
    let up = (1..=3).map(NodeId).filter(|&n| sim.is_up(n));
    let to = up.clone().find(|&n| matches!(sim.component(n), Some(TestNode::Replica(r)) if r.raft().is_some_and(|r| r.role() == Role::Leader)));
    let Some(to) = to.or(up.clone().next()) else { return };
    sim.inject(to, OPERATOR, StationMsg::HaReport(HaReport::Event(Event::Operator(action))));
}

fn db() -> ServiceSpec {
    let mut spec = ServiceSpec::new("db", "/usr/bin/db", ServiceKind::Singleton { standbys: 0 });
    spec.placement.preferred = vec![NodeId(4), NodeId(5)];
    spec
}

/// Reports from `agent` that its instance of the start it got is running.
fn report_running(sim: &mut Sim<TestNode>, agent: u64) {
    let last = commands(sim, agent).into_iter().last().expect("a command to answer");
    let token = last.token();
    let to = leader(sim);
    for event in [
        Event::CommandDone { command: last.id },
        Event::InstanceStarted { instance: last.instance, token },
        Event::InstanceActive { instance: last.instance, token },
    ] {
        sim.inject(to, NodeId(agent), StationMsg::HaReport(HaReport::Event(event)));
    }
}

fn joined_cluster(seed: u64) -> (Sim<TestNode>, Vec<(u64, LeaseId)>) {
    let mut sim = cluster_with_probes(seed, &[4, 5, 6, 9]);
    let leases: Vec<(u64, LeaseId)> = AGENTS.iter().map(|&agent| (agent, join(&mut sim, agent))).collect();
    run_renewing(&mut sim, 1_000, &leases);
    (sim, leases)
}

#[test]
fn a_singleton_starts_on_its_first_preferred_node_with_a_token() {
    let (mut sim, leases) = joined_cluster(1);
    operator(&mut sim, OperatorAction::AddService(Box::new(db())));
    run_renewing(&mut sim, 1_000, &leases);
    let first = starts(&sim, 4, "db");
    assert!(matches!(first.first(), Some(Some(_))), "n4 was told to start db as primary: {first:?}");
    assert!(starts(&sim, 5, "db").is_empty() && starts(&sim, 6, "db").is_empty(), "nowhere else");
    let replicas = (1..=3).filter_map(|n| match sim.component(NodeId(n)) {
        Some(TestNode::Replica(r)) => r.state_machine().map(|m| m.ha().graph.clone()),
        _ => None,
    });
    let graphs: Vec<_> = replicas.collect();
    assert_eq!(graphs.len(), 3);
    assert!(graphs.windows(2).all(|w| w[0] == w[1]), "every replica holds the same graph");
    // What a polling agent is handed, from any replica: the start n4 awaits.
    let follower = (1..=3).map(NodeId).find(|&n| n != leader(&sim)).expect("a follower");
    let query = StationMsg::CommandsQuery { client: 9, seq: 1, of: CommandsOf::Node(NodeId(4)) };
    match common::ask(&mut sim, follower, query) {
        StationMsg::Commands { client: 9, seq: 1, commands: awaited } => {
            let sent = commands(&sim, 4).last().cloned().expect("n4 was sent its start (and re-sent it, unanswered)");
            assert_eq!(awaited, [sent], "the start sent to n4, still awaited")
        }
        other => panic!("expected n4's commands, got {other:?}"),
    }
    let query = StationMsg::CommandsQuery { client: 9, seq: 2, of: CommandsOf::Node(NodeId(5)) };
    assert!(
        matches!(common::ask(&mut sim, follower, query), StationMsg::Commands { seq: 2, commands, .. } if commands.is_empty()),
        "n5 awaits nothing"
    );
    assert_eq!(graphs[0].instances.len(), 1);
}

#[test]
fn the_singleton_moves_only_after_the_dead_nodes_lease_was_revoked() {
    let (mut sim, leases) = joined_cluster(2);
    operator(&mut sim, OperatorAction::AddService(Box::new(db())));
    run_renewing(&mut sim, 1_000, &leases);
    report_running(&mut sim, 4);
    run_renewing(&mut sim, 1_000, &leases);
    let first = starts(&sim, 4, "db")[0].expect("a primary's token");

    // n4 goes silent: only n5 and n6 renew from now on.
    let n4_lease = leases[0].1;
    let survivors: Vec<(u64, LeaseId)> = leases[1..].to_vec();
    let mut revoked_at = None;
    for round in 0..1_000u64 {
        if round % 50 == 0 {
            renew(&mut sim, &survivors, round);
        }
        sim.run_for(ms(10));
        if revoked_at.is_none() && revoked(&sim, n4_lease) {
            revoked_at = Some(sim.now());
        }
        let moved = !starts(&sim, 5, "db").is_empty();
        assert!(!moved || revoked_at.is_some(), "db started on n5 while n4's lease was still alive");
    }
    assert!(revoked_at.is_some(), "n4's lease expired through the log");
    let moved = starts(&sim, 5, "db");
    assert!(
        matches!(moved.first(), Some(Some(token)) if *token > first),
        "n5 took over with a greater token: {moved:?}"
    );
}

/// Some running replica applied the revocation of `lease`.
fn revoked(sim: &Sim<TestNode>, lease: LeaseId) -> bool {
    (1..=3).filter(|&n| sim.is_up(NodeId(n))).any(|n| match sim.component(NodeId(n)) {
        Some(TestNode::Replica(r)) => {
            r.state_machine().is_some_and(|m| !m.store().lease_ttls().any(|(id, _)| id == lease))
        }
        _ => false,
    })
}

#[test]
fn a_leader_crash_mid_decision_starts_the_singleton_once_with_one_token() {
    let (mut sim, leases) = joined_cluster(3);
    operator(&mut sim, OperatorAction::AddService(Box::new(db())));
    sim.run_for(ms(20));
    let old = leader(&sim);
    sim.crash(old);
    // The operator repeats its report until it sees it took effect (adding
    // a service again with the same spec changes nothing).
    for _ in 0..8 {
        run_renewing(&mut sim, 500, &leases);
        if graph(&sim).is_none_or(|g| !g.services.contains_key("db")) {
            operator(&mut sim, OperatorAction::AddService(Box::new(db())));
        }
    }
    assert_ne!(leader(&sim), old);
    let tokens: Vec<Option<u64>> = AGENTS.iter().flat_map(|&a| starts(&sim, a, "db")).collect();
    assert!(!tokens.is_empty(), "the new leader placed db");
    let first = tokens[0];
    assert!(first.is_some() && tokens.iter().all(|t| *t == first), "one decision, resent at most: {tokens:?}");
    assert_eq!(starts(&sim, 4, "db").len(), tokens.len(), "on the preferred node only");
}

/// The graph of the current leader, if there is one.
fn graph(sim: &Sim<TestNode>) -> Option<haven_ha::StateGraph> {
    (1..=3).map(NodeId).filter(|&n| sim.is_up(n)).find_map(|n| match sim.component(n) {
        Some(TestNode::Replica(r)) if r.raft().is_some_and(|r| r.role() == Role::Leader) => {
            r.state_machine().map(|m| m.ha().graph.clone())
        }
        _ => None,
    })
}

#[test]
fn an_operators_action_is_answered_once_queued_and_every_replica_shows_the_service() {
    let (mut sim, leases) = joined_cluster(4);
    let report = HaReport::Event(Event::Operator(OperatorAction::AddService(Box::new(db()))));
    let to = leader(&sim);
    sim.inject(to, OPERATOR, StationMsg::HaRequest(HaRequest { client: 90, seq: 1, report }));
    run_renewing(&mut sim, 500, &leases);
    let reply = inbox(&sim, OPERATOR.0).iter().find_map(|msg| match msg {
        StationMsg::HaReply(reply) => Some(reply.result.clone()),
        _ => None,
    });
    assert!(matches!(reply, Some(Ok(id)) if id > 3), "queued after the three joins: {reply:?}");
    run_renewing(&mut sim, 500, &leases);
    for replica in 1..=3 {
        sim.inject(NodeId(replica), OPERATOR, StationMsg::HaQuery { client: 90, seq: 10 + replica });
    }
    sim.run_for(ms(100));
    let views: Vec<&HaView> = inbox(&sim, OPERATOR.0)
        .iter()
        .filter_map(|msg| match msg {
            StationMsg::HaView(view) => Some(&**view),
            _ => None,
        })
        .collect();
    assert_eq!(views.len(), 3, "every replica answers from its applied state");
    for view in views {
        assert!(view.graph.services.contains_key("db"), "replica answering seq {}", view.seq);
        assert_eq!((view.graph.nodes.len(), view.queue_len), (3, 0));
    }
}

/// A service whose one step cannot fit a log entry (here: entries of at
/// most 4 KiB, a definition of about 1.8 KiB that the step carries three
/// times) must not make the leader spin on it: the step is shrunk to one
/// event and one overdue record, then reported once, and nothing is sent.
#[test]
fn a_step_too_large_for_one_entry_is_reported_once_and_nothing_is_sent() {
    let mut sim = cluster_with_probes_and(5, &[4, 9], |config| {
        config.raft.command_bytes_max = 4_096;
        config.wal.entry_bytes_max = 4_096;
    });
    let reported: Rc<RefCell<Vec<(u64, u64)>>> = Rc::default();
    let seen = reported.clone();
    sim.add_safety("collect oversized steps", move |sim| {
        for (_, out) in sim.last_outputs() {
            if let ReplicaEvent::HaStepTooLarge { bytes, bytes_max } = out {
                seen.borrow_mut().push((*bytes, *bytes_max));
            }
        }
        Ok(())
    });
    let lease = join(&mut sim, 4);
    run_renewing(&mut sim, 1_000, &[(4, lease)]);
    let mut spec = db();
    spec.args = vec!["x".repeat(1_800)];
    operator(&mut sim, OperatorAction::AddService(Box::new(spec)));
    run_renewing(&mut sim, 2_000, &[(4, lease)]);
    let reported = reported.borrow();
    assert_eq!(reported.len(), 1, "reported once, not on every turn: {reported:?}");
    let (bytes, bytes_max) = reported[0];
    assert!(bytes > bytes_max && bytes_max == 4_096, "{bytes} > {bytes_max}");
    assert!(starts(&sim, 4, "db").is_empty(), "no command before its decision is committed");
}
