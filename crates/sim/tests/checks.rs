//! Checkers, limits, the report line, and scenario composition.

use crate::common;

use common::{Msg, Node, Out, ms, n, record};
use haven_sim::{ConfigError, Dist, Outcome, Process, RunReport, Scenario, Sim, SimConfig, SimTime, actions};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

fn boot_and_end(sim: &mut Sim<Node>, end_after: Duration) -> RunReport {
    let mut sc = Scenario::new();
    let boot = sc.add(Process::new("boot", 1, Dist::ZERO, actions::start_all()));
    sc.end_after(&[boot], end_after);
    sim.run(sc)
}

fn is_lower_hex16(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn a_safety_violation_stops_the_run_and_is_reported() {
    let mut sim = common::sim(SimConfig::new(5, 3), Some(ms(50)));
    sim.add_safety("no third ping", |sim: &Sim<Node>| {
        for (node, out) in sim.last_outputs() {
            if let Out::Recv { from, msg: Msg::Ping(3) } = out {
                return Err(format!("{node} got ping 3 from {from}"));
            }
        }
        Ok(())
    });
    let report = boot_and_end(&mut sim, Duration::from_secs(10));
    let Outcome::Violation(v) = &report.outcome else { panic!("no violation: {report}") };
    assert_eq!(v.checker, "no third ping");
    assert!(v.at > SimTime::from_millis(150) && v.at < SimTime::from_millis(152), "at {}", v.at);
    assert_eq!(report.sim_time, v.at);
    assert_eq!(report.events, sim.counters().events);
    assert!(!sim.step(), "a stopped run stays stopped");
    assert_eq!(sim.now(), v.at);
    let line = report.line();
    let hash = format!("{:016x}", report.trace_hash);
    assert!(is_lower_hex16(&hash));
    assert_eq!(line, format!("seed=5 trace_hash={hash} result=violation: no third ping at {}: {}", v.at, v.detail));
    assert!(v.detail.contains(" got ping 3 from n"), "{}", v.detail);
}

#[test]
fn an_ok_run_reports_ok() {
    let mut sim = common::sim(SimConfig::new(6, 3), Some(ms(50)));
    let report = boot_and_end(&mut sim, Duration::from_secs(1));
    let line = report.line();
    let (prefix, rest) = line.split_at("seed=6 trace_hash=".len());
    assert_eq!(prefix, "seed=6 trace_hash=");
    assert!(is_lower_hex16(&rest[..16]), "{line}");
    assert_eq!(&rest[16..], " result=ok");
    assert_eq!(report.sim_time, SimTime::from_secs(1), "faults over at 1 s, no liveness checkers: the run ends");
}

#[test]
fn a_liveness_checker_that_never_holds_is_reported() {
    let mut sim = common::sim(SimConfig::new(7, 3), Some(ms(50)));
    sim.add_liveness("never", Duration::from_secs(2), Duration::from_secs(1), |_: &Sim<Node>| Err("nope".into()));
    let report = boot_and_end(&mut sim, Duration::from_secs(1));
    let Outcome::Violation(v) = &report.outcome else { panic!("no violation: {report}") };
    assert_eq!(v.checker, "never");
    assert_eq!(v.at, SimTime::from_secs(3), "checked first at faults over (1 s) + within (2 s)");
    assert_eq!(v.detail, "nope (faults over at 1.000000s; must hold from 3.000000s to 4.000000s)");
}

#[test]
fn liveness_is_judged_only_inside_its_window() {
    for (within, ok) in [(ms(500), true), (ms(400), false)] {
        let mut sim = common::sim(SimConfig::new(8, 2), Some(ms(50)));
        sim.add_liveness("late", within, ms(300), |sim: &Sim<Node>| {
            let over = sim.faults_over_at().expect("only run once faults are over");
            if sim.now() >= over + ms(500) { Ok(()) } else { Err(format!("not yet at {}", sim.now())) }
        });
        let report = boot_and_end(&mut sim, ms(100));
        assert_eq!(report.is_ok(), ok, "within {within:?}: {report}");
        if ok {
            assert_eq!(report.sim_time, SimTime::from_millis(900), "ends after the window");
        }
    }
}

#[test]
fn the_end_step_heals_everything_before_liveness() {
    let mut sim = common::sim(SimConfig::new(9, 5), Some(ms(50)));
    let log = record(&mut sim);
    sim.add_liveness("all up, all linked", Duration::ZERO, Duration::from_secs(1), |sim: &Sim<Node>| {
        let ids = sim.node_ids();
        if let Some(down) = ids.iter().find(|n| !sim.is_up(**n)) {
            return Err(format!("{down} is down"));
        }
        match ids.iter().flat_map(|a| ids.iter().map(move |b| (*a, *b))).find(|(a, b)| !sim.link_open(*a, *b)) {
            Some((a, b)) => Err(format!("{a} -> {b} closed")),
            None => Ok(()),
        }
    });
    let mut sc = Scenario::new();
    let boot = sc.add(Process::new("boot", 1, Dist::ZERO, actions::start_all()));
    let chaos = sc.add(
        Process::new("chaos", 1, Dist::ZERO, |sim: &mut Sim<Node>, _: &mut _, _| {
            sim.crash(n(1));
            sim.pause(n(2), Duration::from_secs(100));
            sim.isolate(n(3));
            sim.clog_node(n(4));
            sim.disk_full(n(5), true);
        })
        .after_end_of(boot, ms(200)),
    );
    sc.end_after(&[chaos], ms(300));
    let report = sim.run(sc);
    assert!(report.is_ok(), "{report}");
    assert_eq!(sim.faults_over_at(), Some(SimTime::from_millis(500)));
    assert_eq!(sim.incarnation(n(1)), 2);
    assert!(!sim.disk(n(5)).is_full());
    // After the heal, crashes and other faults are refused.
    sim.crash(n(2));
    assert!(sim.is_up(n(2)));
    let restarted = log
        .borrow()
        .iter()
        .filter(|(at, node, o)| *node == n(1) && *o == Out::Started && *at == SimTime::from_millis(500))
        .count();
    assert_eq!(restarted, 1);
}

#[test]
fn processes_start_when_told() {
    let mut sim = common::sim(SimConfig::new(10, 1), None);
    let fired: Rc<RefCell<Vec<(String, u32, SimTime)>>> = Rc::default();
    let note = |name: &'static str| {
        let fired = fired.clone();
        move |sim: &mut Sim<Node>, _: &mut rand_chacha::ChaCha8Rng, i: u32| {
            fired.borrow_mut().push((name.into(), i, sim.now()))
        }
    };
    let mut sc = Scenario::new();
    let a = sc.add(Process::new("a", 3, Dist::constant(ms(100)), note("a")).at(SimTime::from_secs(1)));
    sc.add(Process::new("b", 1, Dist::ZERO, note("b")).after_start_of(a, ms(50)));
    let c = sc.add(Process::new("c", 2, Dist::constant(ms(10)), note("c")).after_end_of(a, ms(200)));
    sc.end_after(&[c], Duration::from_secs(1));
    let report = sim.run(sc);
    assert!(report.is_ok(), "{report}");
    let t = SimTime::from_millis;
    let expected = vec![
        ("b".to_owned(), 0, t(1_050)),
        ("a".to_owned(), 0, t(1_100)),
        ("a".to_owned(), 1, t(1_200)),
        ("a".to_owned(), 2, t(1_300)),
        ("c".to_owned(), 0, t(1_510)),
        ("c".to_owned(), 1, t(1_520)),
    ];
    assert_eq!(*fired.borrow(), expected);
    assert_eq!(sim.faults_over_at(), Some(t(2_520)));
}

#[test]
fn crash_restart_brings_the_node_back_after_its_downtime() {
    let mut sim = common::sim(SimConfig::new(11, 1), None);
    let log = record(&mut sim);
    let mut sc = Scenario::new();
    let boot = sc.add(Process::new("boot", 1, Dist::ZERO, actions::start_all()));
    sc.add(
        Process::new("crash", 1, Dist::ZERO, actions::crash_restart(Dist::constant(ms(250))))
            .after_end_of(boot, ms(100)),
    );
    let idle =
        sc.add(Process::new("idle", 1, Dist::constant(Duration::from_secs(1)), |_: &mut Sim<Node>, _: &mut _, _| {}));
    sc.end_after(&[idle], Duration::ZERO);
    let report = sim.run(sc);
    assert!(report.is_ok(), "{report}");
    let starts: Vec<SimTime> = log.borrow().iter().filter(|(_, _, o)| *o == Out::Started).map(|e| e.0).collect();
    assert_eq!(starts, vec![SimTime::ZERO, SimTime::from_millis(350)]);
}

#[test]
fn limits_stop_runaway_runs() {
    let mut config = SimConfig::new(12, 3);
    config.events_max = 100;
    let mut sim = common::sim(config, Some(ms(1)));
    let report = boot_and_end(&mut sim, Duration::from_secs(100));
    let Outcome::Violation(v) = &report.outcome else { panic!("{report}") };
    assert_eq!((v.checker.as_str(), report.events), ("limit", 100));

    let mut config = SimConfig::new(13, 3);
    config.time_max = Duration::from_secs(2);
    let mut sim = common::sim(config, Some(ms(50)));
    let report = boot_and_end(&mut sim, Duration::from_secs(100));
    assert!(report.line().contains("result=violation: limit at "), "{report}");
    assert!(report.sim_time <= SimTime::from_secs(2));
}

#[test]
fn bad_settings_are_refused() {
    let mut config = SimConfig::new(1, 0);
    assert!(matches!(Sim::new(config.clone(), |_| Node::new(0, None)).err(), Some(ConfigError::Nodes { .. })));
    config.nodes = 2;
    config.link.loss_probability = 2.0;
    assert!(matches!(Sim::new(config, |_| Node::new(2, None)).err(), Some(ConfigError::Probability { .. })));
    let mut sim = common::sim(SimConfig::new(1, 2), None);
    let mut sc = Scenario::new();
    sc.add(Process::new("bad", 1, Dist::uniform(ms(2), ms(1)), actions::start_all()));
    let report = sim.run(sc);
    assert!(
        report.line().contains("result=violation: scenario at 0.000000s: process interval: uniform range"),
        "{report}"
    );
}

/// Regression (reported while testing the WAL): after a direct `start` from
/// test code, checkers saw the outputs of the event before it a second time.
#[test]
fn checkers_see_each_output_once_across_direct_starts() {
    let mut sim = common::sim(SimConfig::new(9, 3), Some(ms(50)));
    let seen: Rc<RefCell<Vec<(u64, String)>>> = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    sim.add_safety("record outputs", move |sim: &Sim<Node>| {
        log.borrow_mut().extend(sim.last_outputs().iter().map(|(node, out)| (node.0, format!("{out:?}"))));
        Ok(())
    });
    sim.start(n(1));
    sim.start(n(2));
    while sim.last_outputs().is_empty() {
        assert!(sim.step(), "the pinging nodes produce outputs");
    }
    let before = seen.borrow().len();
    sim.start(n(3)); // a direct call right after an event that had outputs
    let new: Vec<(u64, String)> = seen.borrow()[before..].to_vec();
    assert_eq!(new, vec![(3, "Started".to_owned())], "the checker must see only the start's own output");
}
