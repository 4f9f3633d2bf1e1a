//! Property test: random sequences of inputs (agent reports in any order,
//! stale and duplicated ones, ticks with growing time, lease renewals and
//! expiries, fences, operator actions) and the safety invariants after every
//! step:
//! - per service, the fencing tokens of newly issued start/promote commands
//!   strictly increase, and a re-issued command is identical to the first;
//! - at most one primary of a singleton holds its slot (pending, starting,
//!   active or stopping);
//! - no command goes to a node whose lease expired, and no new instance is
//!   placed on a drained node.

use crate::common;

use common::*;
use haven_ha::{
    Action, AgentCommand, CommandId, Event, InstanceId, InstanceState, OperatorAction, ServiceKind, ServiceSpec,
    StateGraph,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const NODES: u64 = 5;

#[derive(Clone, Debug)]
enum Op {
    Tick(u64),
    Renew {
        node: u64,
        lease_ms: u64,
    },
    Expire(u64),
    Fence(u64),
    /// A node joins; the second field picks its session (a change ends the old one).
    Join(u64, i64),
    Drain(u64),
    Undrain(u64),
    Move(u64),
    Toggle {
        service: usize,
        enable: bool,
    },
    Report {
        pick: usize,
        kind: u8,
        stale: bool,
    },
    Done {
        pick: usize,
        ok: bool,
    },
    UnknownDone(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let node = 1..=NODES;
    prop_oneof![
        6 => (0u64..700).prop_map(Op::Tick),
        6 => (node.clone(), 100u64..1500).prop_map(|(node, lease_ms)| Op::Renew { node, lease_ms }),
        1 => node.clone().prop_map(Op::Expire),
        1 => node.clone().prop_map(Op::Fence),
        1 => (node.clone(), 1..3i64).prop_map(|(node, session)| Op::Join(node, session)),
        1 => node.clone().prop_map(Op::Drain),
        1 => node.clone().prop_map(Op::Undrain),
        1 => node.prop_map(Op::Move),
        1 => (0usize..4, any::<bool>()).prop_map(|(service, enable)| Op::Toggle { service, enable }),
        8 => (any::<usize>(), 0u8..4, proptest::bool::weighted(0.1)).prop_map(|(pick, kind, stale)| Op::Report { pick, kind, stale }),
        6 => (any::<usize>(), proptest::bool::weighted(0.85)).prop_map(|(pick, ok)| Op::Done { pick, ok }),
        1 => (0u64..50).prop_map(Op::UnknownDone),
    ]
}

fn services() -> Vec<ServiceSpec> {
    let mut db = ServiceSpec::new("db", "/bin/db", ServiceKind::Singleton { standbys: 1 });
    db.promote = Some("/bin/db-promote".to_string());
    db.restart.restarts_max = 1;
    db.restart.restart_window_ms = 2_000;
    db.start_timeout_ms = 3_000;
    db.health.timeout_ms = 100;
    let mut app = ServiceSpec::new("app", "/bin/app", ServiceKind::Singleton { standbys: 0 });
    app.placement.start_after = vec!["db".to_string()];
    app.placement.anti_affinity = vec!["web".to_string()];
    app.restart.restarts_max = 0;
    let web = ServiceSpec::new("web", "/bin/web", ServiceKind::Replicated { count: 2 });
    let mut mon = ServiceSpec::new("mon", "/bin/mon", ServiceKind::EveryNode);
    mon.placement.labels.insert("mon".to_string(), "yes".to_string());
    vec![db, app, web, mon]
}

/// The input an op stands for, given the graph (picks index into what exists).
fn event(g: &StateGraph, op: &Op, now_ms: u64) -> Event {
    match op {
        Op::Tick(_) => Event::Tick,
        Op::Renew { node, lease_ms } => Event::LeaseRenewed { node: n(*node), expires_at_ms: now_ms + lease_ms },
        Op::Expire(node) => Event::LeaseExpired { node: n(*node) },
        Op::Fence(node) => {
            let session = g.nodes.get(&n(*node)).map_or(0, |known| known.session);
            Event::FenceConfirmed { node: n(*node), session }
        }
        Op::Join(node, session) => {
            let labels =
                if node % 2 == 0 { BTreeMap::from([("mon".to_string(), "yes".to_string())]) } else { BTreeMap::new() };
            Event::NodeJoined {
                node: n(*node),
                address: format!("n{node}"),
                labels,
                lease_expires_at_ms: now_ms + 1_000,
                session: *session,
            }
        }
        Op::Drain(node) => Event::Operator(OperatorAction::Drain { node: n(*node) }),
        Op::Undrain(node) => Event::Operator(OperatorAction::Undrain { node: n(*node) }),
        Op::Move(node) => Event::Operator(OperatorAction::Move { service: "db".to_string(), to: n(*node) }),
        Op::Toggle { service, enable } => {
            let service = services()[*service].name.clone();
            Event::Operator(if *enable {
                OperatorAction::Enable { service }
            } else {
                OperatorAction::Disable { service }
            })
        }
        Op::Report { pick, kind, stale } => report(g, *pick, *kind, *stale),
        Op::Done { pick, ok } => {
            let awaited: Vec<CommandId> =
                g.instances.values().filter_map(|i| i.command.as_ref()).map(|c| c.command.id).collect();
            let command = if awaited.is_empty() { CommandId(*pick as u64 % 8) } else { awaited[pick % awaited.len()] };
            if *ok {
                Event::CommandDone { command }
            } else {
                Event::CommandFailed { command, error: "boom".to_string() }
            }
        }
        Op::UnknownDone(id) => Event::CommandDone { command: CommandId(*id) },
    }
}

fn report(g: &StateGraph, pick: usize, kind: u8, stale: bool) -> Event {
    let ids: Vec<InstanceId> = g.instances.keys().copied().collect();
    let instance = if ids.is_empty() { InstanceId(pick as u64 % 4) } else { ids[pick % ids.len()] };
    let current = g.instances.get(&instance).and_then(|i| i.token);
    let token = if stale { current.map(|t| t.saturating_sub(1)).or(Some(0)) } else { current };
    match kind {
        0 => Event::InstanceStarted { instance, token },
        1 => Event::InstanceActive { instance, token },
        2 => Event::InstanceExited { instance, token, code: Some(1) },
        _ => Event::InstanceUnhealthy { instance, token },
    }
}

/// What the checker remembers across steps.
#[derive(Default)]
struct Seen {
    commands: BTreeMap<CommandId, AgentCommand>,
    token_max: BTreeMap<String, u64>,
}

impl Seen {
    fn check(&mut self, g: &StateGraph, command: &AgentCommand, now_ms: u64) -> Result<(), TestCaseError> {
        let node = &g.nodes[&command.node];
        prop_assert!(node.is_alive(now_ms), "{command} sent to {} whose lease expired", node.id);
        if let Some(first) = self.commands.get(&command.id) {
            prop_assert_eq!(first, command, "a re-issued command must be identical");
            return Ok(());
        }
        if !matches!(command.action, Action::Stop { .. }) {
            prop_assert!(!node.drained, "{} placed on drained {}", command, node.id);
        }
        if let Some(token) = command.token() {
            let last = self.token_max.entry(command.service().to_string()).or_default();
            prop_assert!(token > *last, "{} after token {} of the same service", command, last);
            *last = token;
        }
        self.commands.insert(command.id, command.clone());
        Ok(())
    }
}

fn singleton_holders(g: &StateGraph, name: &str) -> usize {
    g.instances_of(name)
        .filter(|i| i.is_primary() && i.state != InstanceState::Failed && i.state != InstanceState::Fenced)
        .count()
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut w = World::new();
    let setup: Vec<Event> = (1..=NODES)
        .map(|node| event(&w.g, &Op::Join(node, 1), 0))
        .chain(services().into_iter().map(|spec| Event::Operator(OperatorAction::AddService(Box::new(spec)))))
        .collect();
    let mut now_ms = 0;
    let mut seen = Seen::default();
    for (i, op) in setup.into_iter().map(Some).chain(ops.iter().map(|_| None)).enumerate() {
        let input = match op {
            Some(setup) => setup,
            None => {
                let op = &ops[i - NODES as usize - services().len()];
                now_ms += if let Op::Tick(dt) = op { *dt } else { 7 };
                event(&w.g, op, now_ms)
            }
        };
        let step = w.raw(now_ms, input);
        for command in &step.commands {
            seen.check(&w.g, command, now_ms)?;
        }
        for name in ["db", "app"] {
            prop_assert!(singleton_holders(&w.g, name) <= 1, "two primaries of {} hold", name);
        }
        prop_assert!(w.g.decisions.len() <= w.g.decisions.len_max());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn safety_invariants_hold_after_every_step(ops in proptest::collection::vec(op(), 1..200)) {
        run(&ops)?;
    }
}

/// A long calm run after chaos converges: every singleton active once, the
/// replicated count reached, once every node renews and reports faithfully.
#[test]
fn after_faults_stop_everything_converges() {
    let mut w = World::new();
    for node in 1..=NODES {
        w.raw(0, event(&w.g, &Op::Join(node, 1), 0));
    }
    for spec in services() {
        w.add(0, spec);
    }
    w.at(10, Event::FenceConfirmed { node: n(1), session: SESSION });
    w.at(20, Event::LeaseExpired { node: n(2) });
    let mut now_ms = 20;
    for _ in 0..40 {
        now_ms += 100;
        for node in 1..=NODES {
            w.raw(now_ms, Event::LeaseRenewed { node: n(node), expires_at_ms: now_ms + 1_000 });
        }
        // A faithful agent: every awaited command succeeds, every started instance becomes healthy.
        let awaited: Vec<CommandId> =
            w.g.instances.values().filter_map(|i| i.command.as_ref()).map(|c| c.command.id).collect();
        for command in awaited {
            w.raw(now_ms, Event::CommandDone { command });
        }
        let starting: Vec<(InstanceId, Option<u64>)> =
            w.g.instances.values().filter(|i| i.state == InstanceState::Starting).map(|i| (i.id, i.token)).collect();
        for (instance, token) in starting {
            w.raw(now_ms, Event::InstanceActive { instance, token });
        }
    }
    let active =
        |name: &str| w.g.instances_of(name).filter(|i| i.is_primary() && i.state == InstanceState::Active).count();
    assert_eq!((active("db"), active("app"), active("web")), (1, 1, 2), "{:#?}", w.instances());
    let mut mons: Vec<String> =
        w.g.instances_of("mon").filter(|i| i.state == InstanceState::Active).map(|i| i.node.to_string()).collect();
    mons.sort();
    assert_eq!(mons, ["n2", "n4"], "one mon per labelled node, back on n2 once it renewed");
}
