//! Same seed, same run; different seed, different run; tracing changes nothing.

use crate::common;

use common::{Node, Out, ms, record, trace};
use haven_sim::{Dist, Process, RunReport, Scenario, Sim, SimConfig, SimTime, actions, sweep};
use std::time::Duration;

/// Five pinging nodes under every kind of fault, then healed.
fn chaos(seed: u64, traced: bool) -> (RunReport, Vec<String>, usize) {
    let mut config = SimConfig::new(seed, 5);
    config.link.loss_probability = 0.01;
    config.link.duplicate_probability = 0.01;
    let mut sim = common::sim(config, Some(ms(50)));
    let lines = if traced { Some(trace(&mut sim)) } else { None };
    let log = record(&mut sim);
    sim.add_safety("delivered only over open links", |sim: &Sim<Node>| {
        // Messages a pause held back arrived earlier; they run when the
        // pause ends, which changes the faults at that very instant.
        if sim.faults_changed_at() == sim.now() {
            return Ok(());
        }
        for (to, out) in sim.last_outputs() {
            if let Out::Recv { from, .. } = out
                && !sim.link_open(*from, *to)
            {
                return Err(format!("{to} received from {from} over a closed link"));
            }
        }
        Ok(())
    });
    sim.add_liveness("all up", Duration::ZERO, Duration::from_secs(1), |sim: &Sim<Node>| {
        match sim.node_ids().iter().find(|n| !sim.is_up(**n)) {
            Some(n) => Err(format!("{n} is {:?}", sim.state(*n))),
            None => Ok(()),
        }
    });
    let mut sc = Scenario::new();
    let clocks = sc.add(Process::new("clocks", 1, Dist::ZERO, actions::randomize_clocks(ms(1000), 200)));
    let boot = sc
        .add(Process::new("boot", 5, Dist::uniform(ms(0), ms(10)), actions::start_each()).after_end_of(clocks, ms(0)));
    let crashes = sc.add(
        Process::new("crashes", 4, Dist::exponential(ms(800)), actions::crash_restart(Dist::uniform(ms(50), ms(900))))
            .after_end_of(boot, ms(500)),
    );
    let splits = sc.add(
        Process::new(
            "splits",
            3,
            Dist::exponential(ms(900)),
            actions::split_majority_minority(Dist::uniform(ms(100), ms(700))),
        )
        .after_start_of(crashes, ms(100)),
    );
    let bridges = sc.add(
        Process::new("bridges", 2, Dist::exponential(ms(900)), actions::bridge(Dist::uniform(ms(100), ms(700))))
            .after_end_of(splits, ms(0)),
    );
    let pauses = sc.add(
        Process::new("pauses", 3, Dist::exponential(ms(600)), actions::pause_one(Dist::uniform(ms(20), ms(400))))
            .after_start_of(crashes, ms(0)),
    );
    let swizzles = sc.add(
        Process::new("swizzle", 2, Dist::exponential(ms(1000)), actions::swizzle(Dist::uniform(ms(5), ms(80))))
            .after_end_of(boot, ms(0)),
    );
    let one_way = sc.add(
        Process::new("one way", 2, Dist::exponential(ms(700)), actions::block_one_way(Dist::uniform(ms(50), ms(300))))
            .after_end_of(boot, ms(0)),
    );
    sc.end_after(&[crashes, splits, bridges, pauses, swizzles, one_way], Duration::from_secs(1));
    let report = sim.run(sc);
    let lines = lines.map(|l| l.borrow().clone()).unwrap_or_default();
    let outputs = log.borrow().len();
    (report, lines, outputs)
}

#[test]
fn same_seed_same_run_and_trace() {
    let (a, lines_a, outputs_a) = chaos(7, true);
    let (b, lines_b, outputs_b) = chaos(7, true);
    assert!(a.is_ok(), "{a}");
    assert_eq!(a, b);
    assert_eq!(lines_a, lines_b);
    assert_eq!(outputs_a, outputs_b);
    assert!(a.events > 1_000, "a chaotic run of several seconds has many events: {}", a.events);
    assert!(lines_a.len() as u64 >= a.events, "one line per event at least");
}

#[test]
fn tracing_does_not_change_the_run() {
    let (traced, _, _) = chaos(11, true);
    let (silent, lines, _) = chaos(11, false);
    assert!(lines.is_empty());
    assert_eq!(traced, silent);
}

#[test]
fn different_seeds_differ() {
    let mut hashes: Vec<u64> = (0..12).map(|seed| chaos(seed, false).0.trace_hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 12, "12 seeds gave only {} distinct trace hashes", hashes.len());
}

#[test]
fn trace_lines_are_readable() {
    let (_, lines, _) = chaos(3, true);
    let recv =
        lines.iter().find(|l| l.contains(" recv from ") && l.contains(" -> send ")).expect("a recv line with a send");
    // `   1.234567s n3 recv from n1 Ping(4) -> send n1 Pong(4)`
    let (time, rest) = recv.trim_start().split_once(' ').unwrap();
    assert!(time.ends_with('s') && time.contains('.'), "{recv}");
    assert!(rest.starts_with('n'), "{recv}");
    for what in [
        "crash n",
        "start n",
        "partition [",
        "bridge [",
        "clog n",
        "unclog n",
        "pause n",
        "faults over",
        "timer#",
        "io#",
    ] {
        assert!(lines.iter().any(|l| l.contains(what)), "no trace line with {what:?}");
    }
}

#[test]
fn sweep_matches_serial_runs_and_catches_panics() {
    let swept = sweep(0..16, 2, |seed| {
        assert!(seed != 13, "boom at {seed}");
        chaos(seed, false).0
    });
    assert_eq!(swept.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), (0..16).collect::<Vec<_>>());
    for run in &swept.runs {
        if run.seed == 13 {
            assert_eq!(
                run.line(),
                "seed=13 trace_hash=0000000000000000 result=violation: panic at 0.000000s: boom at 13"
            );
        } else {
            assert_eq!(run, &chaos(run.seed, false).0);
        }
    }
    assert!(!swept.all_ok());
    assert!(swept.summary().starts_with("runs=16 ok=15 failed=1\nseed=13 "), "{}", swept.summary());
    let _ = SimTime::ZERO;
}

#[test]
#[ignore = "prints a trace for eyeballing"]
fn dump_trace() {
    let (report, lines, _) = chaos(std::env::var("SEED").map_or(3, |s| s.parse().unwrap()), true);
    for line in &lines {
        println!("{line}");
    }
    println!("{report}");
}
