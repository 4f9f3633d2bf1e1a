//! Transcript tests of placement and failover: each feeds inputs one at a
//! time and asserts exactly what a step emits (changes, commands and
//! decisions with their causes).

use crate::common;

use common::*;
use haven_ha::{Action, CommandId, Event, InstanceId, Role, ServiceKind, ServiceSpec};

const LONG_MS: u64 = 1_000_000;

#[test]
fn first_placement_takes_the_least_loaded_node_with_token_1() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    w.join(0, 2, &[]);
    let out = w.add(10, singleton("db"));
    assert_eq!(out.changes, ["put service db", "put i1 db@n1 primary pending token 1 awaiting c1"]);
    assert_eq!(out.commands, ["c1 n1 start i1 db primary token 1"]);
    assert_eq!(
        out.decisions,
        ["added service db [operator: add service db]", "started db on n1 [operator: add service db]"]
    );
    let issued = &w.g.instances[&InstanceId(1)].command.as_ref().expect("the start is awaited").command;
    let Action::Start { spec, role, token } = &issued.action else { panic!("not a start: {issued}") };
    assert_eq!((spec.command.as_str(), *role, *token), ("/usr/bin/true", Role::Primary, Some(1)));

    let out = w.at(20, Event::CommandDone { command: CommandId(1) });
    assert_eq!(out.changes, ["put i1 db@n1 primary starting token 1"]);
    let out = w.active(30, 1);
    assert_eq!(out.changes, ["put i1 db@n1 primary active token 1"]);
    assert!(out.commands.is_empty() && out.decisions.is_empty(), "{out:?}");

    // n1 carries db now, so the next service goes to n2.
    let out = w.add(40, singleton("web"));
    assert_eq!(out.commands, ["c2 n2 start i2 web primary token 2"]);
}

#[test]
fn cascading_failover_follows_the_preferred_order() {
    let mut w = World::new();
    for node in 1..=3 {
        w.join(0, node, &[]);
    }
    let mut spec = singleton("db");
    spec.placement.preferred = vec![n(3), n(1), n(2)];
    assert_eq!(w.add(10, spec).commands, ["c1 n3 start i1 db primary token 1"]);
    w.active(20, 1);
    w.renew(900, &[1, 2]);
    // The lease holds up to and including 1.000 s.
    assert_eq!(w.tick(1000), Out { changes: vec![], commands: vec![], decisions: vec![] });

    let out = w.tick(1001);
    assert_eq!(
        out.changes,
        [
            "put n3 dead at 1.000 s (Lease)",
            "put service db",
            "put i1 db@n3 primary fenced token 1",
            "put service db",
            "put i2 db@n1 primary pending token 2 awaiting c2",
        ]
    );
    assert_eq!(out.commands, ["c2 n1 start i2 db primary token 2"]);
    assert_eq!(
        out.decisions,
        [
            "n3 is dead: its lease expired at 1.000 s [tick]",
            "moved db from n3 to n1: n3's lease expired at 1.000 s [tick]"
        ]
    );
    w.active(1100, 2);
    w.renew(1800, &[2]);
    let out = w.at(1850, Event::LeaseExpired { node: n(1) });
    assert_eq!(out.commands, ["c3 n2 start i3 db primary token 3"]);
    assert_eq!(
        out.decisions,
        [
            "n1 is dead: its lease expired at 1.850 s [n1's lease expired]",
            "moved db from n1 to n2: n1's lease expired at 1.850 s [n1's lease expired]",
        ]
    );
}

fn flaky(restarts_max: u32) -> ServiceSpec {
    let mut spec = singleton("db");
    spec.restart.restarts_max = restarts_max;
    spec.restart.restart_window_ms = 10_000;
    spec
}

#[test]
fn restart_in_place_then_move_after_the_kth_failure_in_the_window() {
    let mut w = World::new();
    w.join_for(0, 1, &[], LONG_MS);
    w.join_for(0, 2, &[], LONG_MS);
    w.add(10, flaky(2));
    w.active(20, 1);

    let out = w.exited(100, 1, 1);
    assert_eq!(out.changes, ["put i1 db@n1 primary pending token 2 awaiting c2"]);
    assert_eq!(out.commands, ["c2 n1 start i1 db primary token 2"]);
    assert_eq!(
        out.decisions,
        ["restarted db on n1 (exit code 1): restart 1 of 2 within 10.000 s [i1 exited with code 1]"]
    );
    w.active(150, 1);
    let out = w.exited(200, 1, 1);
    assert_eq!(out.commands, ["c3 n1 start i1 db primary token 3"]);
    assert_eq!(
        out.decisions,
        ["restarted db on n1 (exit code 1): restart 2 of 2 within 10.000 s [i1 exited with code 1]"]
    );
    w.active(250, 1);

    // The third failure within the window: stop on n1, nothing elsewhere yet.
    let out = w.exited(300, 1, 1);
    assert_eq!(out.changes, ["put service db", "put service db", "put i1 db@n1 primary stopping token 3 awaiting c4"]);
    assert_eq!(out.commands, ["c4 n1 stop i1 db"]);
    assert_eq!(
        out.decisions,
        ["stopping db on n1: exit code 1 after 2 restarts within 10.000 s [i1 exited with code 1]"]
    );
    assert!(w.tick(799).commands.is_empty(), "no start elsewhere before the stop is confirmed");
    assert_eq!(w.tick(800).commands, ["c4 n1 stop i1 db"], "the unconfirmed stop is asked again");

    let out = w.at(900, Event::CommandDone { command: CommandId(4) });
    assert_eq!(
        out.changes,
        ["put i1 db@n1 primary failed token 3", "put service db", "put i2 db@n2 primary pending token 4 awaiting c5"]
    );
    assert_eq!(out.commands, ["c5 n2 start i2 db primary token 4"]);
    assert_eq!(
        out.decisions,
        [
            "stopped db on n1 [c4 done]",
            "moved db from n1 to n2: exit code 1 after 2 restarts within 10.000 s [c4 done]",
        ]
    );

    // n1 is kept out for the window: when n2 fails too there is nowhere to go.
    w.active(1000, 2);
    let mut w_strict = w;
    let mut spec = flaky(0);
    spec.restart.restart_window_ms = 10_000;
    w_strict.add(1100, spec);
    let out = w_strict.exited(1200, 2, 3);
    assert_eq!(out.commands, ["c6 n2 stop i2 db"]);
    let out = w_strict.at(1300, Event::CommandDone { command: CommandId(6) });
    assert!(out.commands.is_empty(), "{out:?}");
    assert_eq!(
        out.decisions,
        [
            "stopped db on n2 [c6 done]",
            "db: no eligible node: n1 failed it (kept out until 10.300 s), n2 failed it (kept out until 11.200 s) [c6 done]",
        ]
    );
    assert_eq!(w_strict.tick(10_299).commands, Vec::<String>::new());
    assert_eq!(
        w_strict.tick(10_300).commands,
        ["c7 n1 start i3 db primary token 5"],
        "n1 is eligible again once the window passed"
    );
}

#[test]
fn failures_further_apart_than_the_window_restart_in_place_forever() {
    let mut w = World::new();
    w.join_for(0, 1, &[], LONG_MS);
    w.join_for(0, 2, &[], LONG_MS);
    w.add(10, flaky(1));
    for round in 1..=5u64 {
        let at = round * 20_000;
        w.active(at - 100, 1);
        let out = w.exited(at, 1, 1);
        assert_eq!(out.commands, [format!("c{} n1 start i1 db primary token {}", round + 1, round + 1)]);
    }
}

#[test]
fn no_replacement_before_the_lease_expires_and_one_right_after() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    w.join(0, 2, &[]);
    w.add(10, flaky(0));
    w.active(20, 1);
    // n1's agent loses the station from here on: no more renewals from it.
    w.renew(500, &[2]);
    // Unhealthy on a node whose lease holds, and no restarts allowed: stop it
    // there, and do not start it anywhere else.
    let out = w.at(600, Event::InstanceUnhealthy { instance: InstanceId(1), token: Some(1) });
    assert_eq!(out.commands, ["c2 n1 stop i1 db"]);
    for now in [700, 800, 900, 999, 1000] {
        let out = w.tick(now);
        assert!(out.commands.iter().all(|c| c.contains("stop")), "at {now}: {:?}", out.commands);
    }
    assert_eq!(w.show(1), "i1 db@n1 primary stopping token 1");
    assert!(w.g.instances.len() == 1, "no second instance before expiry: {:?}", w.instances());

    let out = w.tick(1001);
    assert_eq!(out.commands, ["c3 n2 start i2 db primary token 2"]);
    assert_eq!(
        out.decisions,
        [
            "n1 is dead: its lease expired at 1.000 s [tick]",
            "moved db from n1 to n2: n1's lease expired at 1.000 s [tick]",
        ]
    );
    assert_eq!(w.instances(), ["i1 db@n1 primary fenced token 1", "i2 db@n2 primary pending token 2"]);
}

#[test]
fn a_silent_node_keeps_its_singleton_until_its_lease_expires() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    w.join(0, 2, &[]);
    w.add(10, singleton("db"));
    w.active(20, 1);
    w.renew(900, &[2]);
    // A stale report from an older incarnation changes nothing either.
    let out = w.at(950, Event::InstanceExited { instance: InstanceId(1), token: Some(0), code: Some(1) });
    assert_eq!(out, Out { changes: vec![], commands: vec![], decisions: vec![] });
    assert_eq!(w.tick(1000).commands, Vec::<String>::new());
    assert_eq!(w.tick(1001).commands, ["c2 n2 start i2 db primary token 2"]);
}

#[test]
fn a_confirmed_fence_of_the_current_session_allows_replacement_before_the_lease_expires() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    w.join(0, 2, &[]);
    w.add(10, singleton("db"));
    w.active(20, 1);
    // A confirmation for a session n1 no longer holds changes nothing.
    let out = w.at(290, Event::FenceConfirmed { node: n(1), session: SESSION - 1 });
    assert_eq!(out, Out { changes: vec![], commands: vec![], decisions: vec![] });
    let out = w.at(300, Event::FenceConfirmed { node: n(1), session: SESSION });
    assert_eq!(out.commands, ["c2 n2 start i2 db primary token 2"]);
    assert_eq!(
        out.decisions,
        [
            "n1 is dead: its fence was confirmed [fence of n1 confirmed]",
            "moved db from n1 to n2: n1 was fenced at 0.300 s [fence of n1 confirmed]",
        ]
    );
    // The fenced node comes back: it gets nothing back, db stays on n2.
    let out = w.at(400, Event::LeaseRenewed { node: n(1), expires_at_ms: 1400 });
    assert_eq!(out.decisions, ["n1 is back: lease renewed until 1.400 s [n1 renewed its lease]"]);
    assert!(out.commands.is_empty(), "{out:?}");
}

#[test]
fn a_lost_command_is_issued_again_unchanged_and_a_new_leader_carries_on() {
    let mut w = World::new();
    w.join_for(0, 1, &[], LONG_MS);
    w.add(10, singleton("db"));
    assert_eq!(w.tick(509), Out { changes: vec![], commands: vec![], decisions: vec![] });
    let out = w.tick(510);
    assert_eq!(out.changes, ["put i1 db@n1 primary pending token 1 awaiting c1"]);
    assert_eq!(out.commands, ["c1 n1 start i1 db primary token 1"]);
    assert!(out.decisions.is_empty());
    assert_eq!(w.g.instances[&InstanceId(1)].command.as_ref().map(|c| c.issued_at_ms), Some(510));
    let awaited: Vec<String> = w.g.commands_awaited().map(|c| c.to_string()).collect();
    assert_eq!(awaited, ["c1 n1 start i1 db primary token 1"], "what agents fetch");

    // Another leader with the same committed graph decides exactly the same.
    let input = haven_ha::Input { now_ms: 1010, event: Event::Tick };
    let a = haven_ha::step(&w.g.clone(), &input, &w.config);
    let b = haven_ha::step(&w.g.clone(), &input, &w.config);
    assert_eq!(a, b);
    assert_eq!(render(&a).commands, ["c1 n1 start i1 db primary token 1"]);
}

#[test]
fn a_start_that_never_becomes_active_counts_as_a_failure() {
    let mut w = World::new();
    w.join_for(0, 1, &[], LONG_MS);
    let mut spec = flaky(1);
    spec.start_timeout_ms = 5_000;
    spec.health.timeout_ms = 100;
    w.add(10, spec);
    w.at(20, Event::CommandDone { command: CommandId(1) });
    let out = w.tick(5_020);
    assert_eq!(out.commands, ["c2 n1 start i1 db primary token 2"]);
    assert_eq!(
        out.decisions,
        ["restarted db on n1 (not active within 5.000 s): restart 1 of 1 within 10.000 s [tick]"]
    );
}

#[test]
fn standby_is_promoted_with_a_fresh_token_and_replaced() {
    let mut w = World::new();
    for node in 1..=3 {
        w.join(0, node, &[]);
    }
    let mut spec = ServiceSpec::new("db", "/usr/bin/pg", ServiceKind::Singleton { standbys: 1 });
    spec.promote = Some("/usr/bin/pg-promote".to_string());
    let out = w.add(10, spec);
    assert_eq!(out.commands, ["c1 n1 start i1 db primary token 1", "c2 n2 start i2 db standby"]);
    w.active(20, 1);
    w.at(30, Event::InstanceActive { instance: InstanceId(2), token: None });
    w.renew(900, &[2, 3]);
    let out = w.tick(1001);
    assert_eq!(out.commands, ["c3 n2 promote i2 db token 2", "c4 n3 start i3 db standby"]);
    assert_eq!(
        out.decisions,
        [
            "n1 is dead: its lease expired at 1.000 s [tick]",
            "moved db from n1 to n2 (promoted standby i2): n1's lease expired at 1.000 s [tick]",
            "started db standby on n3 [tick]",
        ]
    );
    let out = w.at(1010, Event::CommandDone { command: CommandId(3) });
    assert_eq!(out.changes, ["put i2 db@n2 primary active token 2"]);
}

#[test]
fn drain_moves_every_instance_off_the_node() {
    let mut w = World::new();
    for node in 1..=3 {
        w.join_for(0, node, &[], LONG_MS);
    }
    w.add(10, singleton("db"));
    w.add(11, ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 2 }));
    assert_eq!(
        w.instances(),
        ["i1 db@n1 primary pending token 1", "i2 web@n2 primary pending token 2", "i3 web@n3 primary pending token 3"]
    );
    for i in 1..=3 {
        w.active(20, i);
    }
    let out = w.op(100, haven_ha::OperatorAction::Drain { node: n(2) });
    // The replica is replaced at once; the singleton was not on n2.
    assert_eq!(out.commands, ["c4 n2 stop i2 web", "c5 n1 start i4 web primary token 4"]);
    assert_eq!(
        out.decisions,
        [
            "drained n2 [operator: drain n2]",
            "stopping web on n2: n2 is drained [operator: drain n2]",
            "started web on n1 [operator: drain n2]"
        ]
    );
    let out = w.op(200, haven_ha::OperatorAction::Drain { node: n(1) });
    assert_eq!(out.commands, ["c6 n1 stop i1 db", "c7 n1 stop i4 web"]);
    assert!(
        out.decisions.iter().any(|d| d.contains("web: no eligible node: n1 drained, n2 drained, n3 runs it already")),
        "{out:?}"
    );
    // The singleton moves only once its stop is confirmed.
    let out = w.at(300, Event::CommandDone { command: CommandId(6) });
    assert_eq!(out.commands, ["c8 n3 start i5 db primary token 5"]);
    assert_eq!(out.decisions, ["stopped db on n1 [c6 done]", "moved db from n1 to n3: n1 is drained [c6 done]"]);
}

#[test]
fn labels_and_anti_affinity_decide_placement_and_say_why_not() {
    let mut w = World::new();
    w.join_for(0, 1, &[("disk", "hdd")], LONG_MS);
    w.join_for(0, 2, &[("disk", "ssd")], LONG_MS);
    w.join_for(0, 3, &[("disk", "ssd")], LONG_MS);
    let mut cache = singleton("cache");
    cache.placement.preferred = vec![n(2)];
    w.add(10, cache);
    w.op(20, haven_ha::OperatorAction::Drain { node: n(3) });
    let mut db = singleton("db");
    db.placement.labels.insert("disk".to_string(), "ssd".to_string());
    db.placement.anti_affinity = vec!["cache".to_string(), "cache2".to_string()];
    let out = w.add(30, db);
    assert!(out.commands.is_empty());
    assert_eq!(
        out.decisions,
        [
            "added service db [operator: add service db]",
            "db: no eligible node: n1 lacks label disk=ssd, n2 runs cache, n3 drained [operator: add service db]",
        ]
    );
    assert_eq!(w.tick(40), Out { changes: vec![], commands: vec![], decisions: vec![] }, "said once, not every tick");
    let out = w.op(50, haven_ha::OperatorAction::Undrain { node: n(3) });
    assert_eq!(out.commands, ["c2 n3 start i2 db primary token 2"]);

    // Anti-affinity holds both ways: a service avoided by db does not land next to it.
    let mut web = singleton("web");
    web.placement.preferred = vec![n(3)];
    assert_eq!(w.add(60, web).commands, ["c3 n3 start i3 web primary token 3"]);
    let mut tmp = singleton("tmp");
    tmp.placement.anti_affinity = vec!["db".to_string(), "web".to_string(), "cache".to_string()];
    assert_eq!(w.add(70, tmp).commands, ["c4 n1 start i4 tmp primary token 4"]);
    // A service that db avoids cannot join db on n3, though it lists nothing itself.
    let mut cache2 = singleton("cache2");
    cache2.placement.preferred = vec![n(3)];
    w.add(80, cache2);
    assert_eq!(w.instances().last().map(String::as_str), Some("i5 cache2@n1 primary pending token 5"));
}

#[test]
fn replicated_keeps_count_on_distinct_nodes_and_every_node_covers_each_node() {
    let mut w = World::new();
    for node in 1..=4 {
        w.join(0, node, &[]);
    }
    let out = w.add(10, ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 3 }));
    assert_eq!(
        out.commands,
        [
            "c1 n1 start i1 web primary token 1",
            "c2 n2 start i2 web primary token 2",
            "c3 n3 start i3 web primary token 3"
        ]
    );
    for i in 1..=3 {
        w.active(20, i);
    }
    w.renew(900, &[1, 3, 4]);
    let out = w.tick(1001);
    assert_eq!(out.commands, ["c4 n4 start i4 web primary token 4"]);
    assert_eq!(out.decisions, ["n2 is dead: its lease expired at 1.000 s [tick]", "started web on n4 [tick]"]);

    // Scaling down stops the newest.
    let out = w.add(1100, ServiceSpec::new("web", "/usr/bin/web", ServiceKind::Replicated { count: 2 }));
    assert_eq!(out.commands, ["c5 n4 stop i4 web"]);

    let mut mon = ServiceSpec::new("mon", "/usr/bin/mon", ServiceKind::EveryNode);
    mon.placement.labels.insert("role".to_string(), "edge".to_string());
    let out = w.add(1200, mon);
    assert!(out.commands.is_empty(), "no edge node yet: {out:?}");
    let out = w.join(1300, 5, &[("role", "edge")]);
    assert_eq!(out.commands, ["c6 n5 start i5 mon primary token 5"]);
    let out = w.join(1400, 6, &[("role", "edge")]);
    assert_eq!(out.commands, ["c7 n6 start i6 mon primary token 6"]);
    let out = w.op(1500, haven_ha::OperatorAction::Drain { node: n(6) });
    assert_eq!(out.commands, ["c8 n6 stop i6 mon"]);
}

#[test]
fn a_rejoin_with_a_new_session_ends_the_old_sessions_instances() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    w.join(0, 2, &[]);
    w.add(10, singleton("db"));
    w.active(20, 1);
    w.add(30, singleton("web"));
    w.active(40, 2);
    assert_eq!((w.g.instances[&InstanceId(1)].node, w.g.instances[&InstanceId(2)].node), (n(1), n(2)));
    // n1's agent restarted: it killed what it left running, took a new lease and joined with it.
    let rejoin = Event::NodeJoined {
        node: n(1),
        address: "10.0.0.1:7000".into(),
        labels: Default::default(),
        lease_expires_at_ms: 1_500,
        session: SESSION + 1,
    };
    let out = w.at(500, rejoin);
    assert_eq!(
        out.decisions,
        [
            "n1's agent started a new session; its earlier instances are gone [n1 joined]",
            "n1 rejoined at 10.0.0.1:7000 [n1 joined]",
            "started db again on n1: n1's agent started a new session [n1 joined]",
        ]
    );
    assert_eq!(out.commands, ["c3 n1 start i3 db primary token 3"]);
    assert_eq!(w.show(1), "i1 db@n1 primary fenced token 1");
    let issued = |w: &World, i: u64| w.g.instances[&InstanceId(i)].command.as_ref().map(|c| c.command.session);
    assert_eq!(issued(&w, 3), Some(SESSION + 1), "decided for n1's new session");

    // n2 kept its session, so its commands keep it too.
    w.exited(600, 2, 1);
    assert_eq!(issued(&w, 2), Some(SESSION), "web restarted in place on n2");
}

/// A node labelled to run no services (a `haven proxy`) is never a
/// candidate, whatever the kind, and the reason names the label: it needs
/// no drain after its join, which would leave a window for a placement.
#[test]
fn a_node_labelled_to_run_no_services_gets_none_of_any_kind() {
    let mut w = World::new();
    let none = haven_ha::NO_SERVICES_LABEL;
    w.join_for(0, 1, &[none, ("haven.role", "proxy")], LONG_MS);
    let out = w.add(10, singleton("db"));
    assert_eq!(
        out.decisions,
        [
            "added service db [operator: add service db]",
            "db: no eligible node: n1 runs no services (haven.services=none) [operator: add service db]",
        ]
    );
    let agent = ServiceSpec::new("agentd", "/bin/agentd", ServiceKind::EveryNode);
    assert!(w.add(20, agent).commands.is_empty(), "not even every-node services");
    let out = w.join_for(30, 2, &[], LONG_MS);
    assert_eq!(out.commands.len(), 2, "both go to n2 once it joins: {:?}", out.commands);
    assert!(out.commands.iter().all(|c| c.contains(" n2 ")), "{:?}", out.commands);
}
