//! Spec validation: each kind of mistake is refused with an error naming the
//! field, and a refused spec never enters the graph.

use crate::common;

use common::*;
use haven_ha::{HealthCheck, ServiceKind, ServiceSpec, SpecError, validate};

fn base() -> ServiceSpec {
    ServiceSpec::new("db", "/usr/bin/pg", ServiceKind::Singleton { standbys: 0 })
}

fn refused(edit: impl FnOnce(&mut ServiceSpec)) -> SpecError {
    let mut spec = base();
    edit(&mut spec);
    validate(&spec).expect_err("the spec should be refused")
}

#[test]
fn the_defaults_are_valid() {
    assert_eq!(validate(&base()), Ok(()));
    let mut standby = ServiceSpec::new("db", "/usr/bin/pg", ServiceKind::Singleton { standbys: 2 });
    standby.promote = Some("/usr/bin/pg-promote".to_string());
    assert_eq!(validate(&standby), Ok(()));
}

#[test]
fn each_mistake_names_its_field() {
    let cases: Vec<(SpecError, &str)> = vec![
        (refused(|s| s.name = "DB".to_string()), "name: \"DB\" is not a valid name"),
        (refused(|s| s.name = String::new()), "name: \"\""),
        (refused(|s| s.name = "a".repeat(64)), "name:"),
        (refused(|s| s.command.clear()), "command: is empty"),
        (refused(|s| s.kind = ServiceKind::Replicated { count: 0 }), "kind.count: is 0"),
        (refused(|s| s.kind = ServiceKind::Replicated { count: 10_001 }), "kind.count: 10001 is more than 10000"),
        (refused(|s| s.kind = ServiceKind::Singleton { standbys: 1 }), "promote: is missing but kind.standbys is 1"),
        (refused(|s| s.kind = ServiceKind::Singleton { standbys: 17 }), "kind.standbys: 17"),
        (refused(|s| s.health.failure_threshold = 0), "health.failure_threshold: is 0"),
        (refused(|s| s.health.timeout_ms = 1_000), "health.timeout_ms: 1000 is not below health.interval_ms 1000"),
        (refused(|s| s.health.check = HealthCheck::Http { url: "https://x".to_string() }), "health.check.url:"),
        (refused(|s| s.health.check = HealthCheck::Tcp { addr: String::new() }), "health.check: addr is empty"),
        (refused(|s| s.start_timeout_ms = 0), "start_timeout_ms: is 0"),
        (refused(|s| s.stop_timeout_ms = 90_000_000), "stop_timeout_ms: 90000000 ms is more than a day"),
        (refused(|s| s.restart.restart_window_ms = 0), "restart.restart_window_ms: is 0"),
        (refused(|s| s.restart.restarts_max = 101), "restart.restarts_max: 101"),
        (
            refused(|s| s.placement.anti_affinity = vec!["db".to_string()]),
            "placement.anti_affinity: names the service itself",
        ),
        (
            refused(|s| s.placement.start_after = vec!["db".to_string()]),
            "placement.start_after: names the service itself",
        ),
        (refused(|s| s.placement.colocate_with = Some("db".to_string())), "placement.colocate_with: names"),
        (refused(|s| s.args = vec![String::new(); 257]), "args: is 257 long, more than 256"),
        (refused(|s| _ = s.env.insert("1X".to_string(), String::new())), "env: key \"1X\""),
        (
            refused(|s| s.args = vec!["a".repeat(4_096); 17]),
            "args, env: the definition's text (command, args, env, working_dir, promote, demote) is 69643 bytes, \
             more than 65536",
        ),
    ];
    for (error, start) in cases {
        let text = error.to_string();
        assert!(text.starts_with(start), "{text:?} should start with {start:?}");
    }
}

#[test]
fn no_restarts_needs_no_window() {
    let mut spec = base();
    spec.restart.restarts_max = 0;
    spec.restart.restart_window_ms = 0;
    assert_eq!(validate(&spec), Ok(()));
}

#[test]
fn a_refused_spec_is_recorded_and_not_added() {
    let mut w = World::new();
    w.join(0, 1, &[]);
    let mut spec = singleton("db");
    spec.kind = ServiceKind::Replicated { count: 0 };
    let out = w.add(10, spec);
    assert_eq!(out.changes, Vec::<String>::new());
    assert_eq!(
        out.decisions,
        [
            "refused service \"db\": kind.count: is 0; a replicated service needs count >= 1 (set enabled = false to stop it instead) [operator: add service db]"
        ]
    );
    assert!(w.g.services.is_empty());
}
