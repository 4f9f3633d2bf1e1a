//! Transcript tests of operator actions, ordering constraints, fencing
//! tokens over many moves, the bounded decision log and snapshots.

use crate::common;

use common::*;
use haven_ha::{CommandId, Event, InstanceId, OperatorAction, ServiceKind, ServiceSpec, StateGraph};

const LONG_MS: u64 = 1_000_000;

fn three_nodes() -> World {
    let mut w = World::new();
    for node in 1..=3 {
        w.join_for(0, node, &[], LONG_MS);
    }
    w
}

#[test]
fn move_stops_first_then_starts_on_the_target() {
    let mut w = three_nodes();
    w.add(10, singleton("db"));
    w.active(20, 1);
    let out = w.op(30, OperatorAction::Move { service: "db".to_string(), to: n(3) });
    assert_eq!(out.commands, ["c2 n1 stop i1 db"]);
    assert_eq!(
        out.decisions,
        [
            "moving db to n3 [operator: move db to n3]",
            "stopping db on n1: the operator moved it to n3 [operator: move db to n3]"
        ]
    );
    let out = w.at(40, Event::InstanceExited { instance: InstanceId(1), token: Some(1), code: Some(0) });
    assert_eq!(out.changes, ["remove i1", "put service db", "put i2 db@n3 primary pending token 2 awaiting c3"]);
    assert_eq!(out.commands, ["c3 n3 start i2 db primary token 2"]);
    assert_eq!(
        out.decisions,
        [
            "stopped db on n1 [i1 exited with code 0]",
            "moved db from n1 to n3: the operator moved it to n3 [i1 exited with code 0]"
        ]
    );
    assert_eq!(w.g.services["db"].move_to, None, "the move is done");
}

#[test]
fn refused_actions_say_why_and_change_nothing() {
    let mut w = three_nodes();
    w.add(10, singleton("db"));
    w.add(10, ServiceSpec::new("web", "/bin/web", ServiceKind::Replicated { count: 1 }));
    w.op(15, OperatorAction::Drain { node: n(3) });
    let cases = [
        (OperatorAction::Move { service: "nope".to_string(), to: n(2) }, "refused: no service \"nope\""),
        (
            OperatorAction::Move { service: "web".to_string(), to: n(2) },
            "refused to move web: only a singleton can be moved",
        ),
        (OperatorAction::Move { service: "db".to_string(), to: n(9) }, "refused to move db: no node n9"),
        (OperatorAction::Move { service: "db".to_string(), to: n(1) }, "db already runs on n1"),
        (OperatorAction::Move { service: "db".to_string(), to: n(3) }, "refused to move db to n3: n3 drained"),
        (OperatorAction::Drain { node: n(7) }, "refused: no node n7"),
        (OperatorAction::Disable { service: "nope".to_string() }, "refused: no service \"nope\""),
    ];
    for (action, text) in cases {
        let cause = format!("operator: {action}");
        let out = w.op(20, action);
        assert_eq!(out.changes, Vec::<String>::new(), "{text}");
        assert_eq!(out.decisions, [format!("{text} [{cause}]")]);
    }
}

#[test]
fn disable_stops_enable_restarts_remove_removes_once_stopped() {
    let mut w = three_nodes();
    w.add(10, ServiceSpec::new("web", "/bin/web", ServiceKind::Replicated { count: 2 }));
    let out = w.op(20, OperatorAction::Disable { service: "web".to_string() });
    assert_eq!(out.commands, ["c3 n1 stop i1 web", "c4 n2 stop i2 web"]);
    w.at(30, Event::CommandDone { command: CommandId(3) });
    w.at(30, Event::CommandDone { command: CommandId(4) });
    assert!(w.g.instances.is_empty());
    let out = w.op(40, OperatorAction::Enable { service: "web".to_string() });
    assert_eq!(out.commands, ["c5 n1 start i3 web primary token 3", "c6 n2 start i4 web primary token 4"]);
    let out = w.op(50, OperatorAction::RemoveService { service: "web".to_string() });
    assert_eq!(out.commands, ["c7 n1 stop i3 web", "c8 n2 stop i4 web"]);
    assert!(w.g.services.contains_key("web"), "stays until its instances are stopped");
    w.at(60, Event::CommandDone { command: CommandId(7) });
    let out = w.at(60, Event::CommandDone { command: CommandId(8) });
    assert_eq!(out.changes, ["remove i4", "remove service web"]);
    assert!(w.g.services.is_empty());
    // Added again under the same name, it continues the token sequence.
    let out = w.add(70, ServiceSpec::new("web", "/bin/web", ServiceKind::Replicated { count: 1 }));
    assert_eq!(out.commands, ["c9 n1 start i5 web primary token 5"]);
}

#[test]
fn start_after_and_colocation_wait_for_the_other_service() {
    let mut w = three_nodes();
    let mut app = singleton("app");
    app.placement.start_after = vec!["db".to_string()];
    app.placement.colocate_with = Some("db".to_string());
    let out = w.add(10, app);
    assert_eq!(out.decisions[1], "app: waiting for db to be active [operator: add service app]");
    let mut db = singleton("db");
    db.placement.preferred = vec![n(2)];
    assert_eq!(w.add(20, db).commands, ["c1 n2 start i1 db primary token 1"]);
    let out = w.active(30, 1);
    assert_eq!(out.commands, ["c2 n2 start i2 app primary token 2"]);
    assert_eq!(out.decisions, ["started app on n2 [i1 active]"]);
    w.active(40, 2);
    // db moves; app follows once db is active on its new node.
    w.op(50, OperatorAction::Move { service: "db".to_string(), to: n(3) });
    let out = w.at(60, Event::CommandDone { command: CommandId(3) });
    assert_eq!(out.commands, ["c4 n3 start i3 db primary token 3"]);
    let out = w.active(70, 3);
    assert_eq!(out.commands, ["c5 n2 stop i2 app"]);
    assert_eq!(out.decisions, ["stopping app on n2: db is active on another node [i3 active]"]);
    let out = w.at(80, Event::CommandDone { command: CommandId(5) });
    assert_eq!(out.commands, ["c6 n3 start i4 app primary token 4"]);
}

#[test]
fn tokens_grow_across_many_failovers() {
    let mut w = three_nodes();
    w.add(10, singleton("db"));
    let mut tokens = vec![w.token(1).expect("a primary has a token")];
    let mut now = 10;
    for round in 0..30u64 {
        now += 100;
        let holder = *w.g.instances.values().find(|i| i.holds()).map(|i| &i.node).expect("db is placed");
        let session = w.g.nodes[&holder].session;
        let out = w.at(now, Event::FenceConfirmed { node: holder, session });
        let start =
            out.commands.iter().find(|c| c.contains("start")).unwrap_or_else(|| panic!("round {round}: {out:?}"));
        let token: u64 = start.rsplit(' ').next().and_then(|t| t.parse().ok()).expect("a token");
        assert!(token > *tokens.last().expect("seeded"), "round {round}: {token} after {tokens:?}");
        tokens.push(token);
        // The fenced node comes back, so there is always somewhere to go.
        w.at(now, Event::LeaseRenewed { node: holder, expires_at_ms: now + LONG_MS });
    }
    assert_eq!(w.g.token_last, *tokens.last().expect("seeded"));
    assert_eq!(tokens.len(), 31);
}

#[test]
fn the_decision_log_keeps_only_the_newest() {
    let mut w = World { g: StateGraph::new(3), ..World::new() };
    for node in 1..=5 {
        w.join(0, node, &[]);
    }
    let texts: Vec<&str> = w.g.decisions.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["n3 joined at 10.0.0.3:7000", "n4 joined at 10.0.0.4:7000", "n5 joined at 10.0.0.5:7000"]);
}

#[test]
fn the_graph_survives_a_snapshot_round_trip() {
    let mut w = three_nodes();
    let mut db = ServiceSpec::new("db", "/bin/db", ServiceKind::Singleton { standbys: 1 });
    db.promote = Some("/bin/promote".to_string());
    w.add(10, db);
    w.active(20, 1);
    w.op(30, OperatorAction::Drain { node: n(3) });
    let mut bytes = Vec::new();
    haven_runtime::wire::encode(&w.g, &mut bytes).expect("encode");
    let back: StateGraph = haven_runtime::wire::decode(&bytes).expect("decode");
    assert_eq!(back, w.g);
    let input = haven_ha::Input { now_ms: 2_000, event: Event::Tick };
    assert_eq!(haven_ha::step(&back, &input, &w.config), haven_ha::step(&w.g, &input, &w.config));
}
