//! `haven sim run --scenario ha-scale`: runs the scenario once and prints
//! its figures.
//!
//! In: a seed, the number of agents and proxies. Out: on stdout, the
//! scenario's figures (recovery p50/p99/max in simulated time, the
//! leader's incoming message rate before and during recovery, the
//! simulated/real time ratio, which only this binary can measure), then the
//! usual last line `seed=N trace_hash=H result=...`; exit status 1 on a
//! violation, with the command that replays it.

use anyhow::{Result, bail};
use haven_scenarios::ha::scale::{self, ScaleConfig, ScaleReport};
use std::io::Write as _;
use std::time::{Duration, Instant};

pub fn run(seed: u64, trace: bool, agents: Option<u64>, proxies: Option<u64>) -> Result<()> {
    let agents = agents.unwrap_or(scale::AGENTS_DEFAULT);
    if !(100..=60_000).contains(&agents) {
        bail!("--agents must be between 100 and 60000 (1% of them crash), not {agents}");
    }
    let proxies = proxies.unwrap_or(agents / scale::AGENTS_PER_PROXY);
    if proxies > agents / 10 {
        bail!("--proxies {proxies} is more than one per 10 agents; give at most {}", agents / 10);
    }
    let config = ScaleConfig { agents, proxies };
    let sink: Option<haven_sim::TraceSink> = trace.then(|| {
        Box::new(|line: &str| {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }) as haven_sim::TraceSink
    });
    let start = Instant::now();
    let report = scale::run_scaled(seed, config, sink);
    let wall = start.elapsed();
    print_report(&report, wall);
    println!("{}", report.run.line());
    if !report.run.is_ok() {
        let c = report.config;
        println!(
            "  replay: haven sim run --scenario ha-scale --seed {seed} --agents {} --proxies {} --trace",
            c.agents, c.proxies
        );
        std::process::exit(1);
    }
    Ok(())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{}", d.as_millis()))
}

fn print_report(r: &ScaleReport, wall: Duration) {
    let sim_s = r.run.sim_time.saturating_since(haven_sim::SimTime::ZERO).as_secs_f64();
    println!(
        "ha-scale agents={} proxies={} services={} settled_after_s={}",
        r.config.agents,
        r.config.proxies,
        r.services,
        r.settled_after.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64()))
    );
    println!("crashed_agents={} affected_singletons={} recovered={}", r.crashed, r.affected, r.recoveries.len());
    println!(
        "recovery_ms p50={} p99={} max={} (simulated; crash -> replacement's active report at a station)",
        ms(r.recovery_quantile(0.5)),
        ms(r.recovery_quantile(0.99)),
        ms(r.recoveries.last().copied())
    );
    println!(
        "leader_msgs_per_s before={:.0} during_recovery={:.0} (messages arriving at the station leader)",
        r.leader_rate_before, r.leader_rate_during
    );
    println!(
        "sim_time_s={sim_s:.1} wall_time_s={:.1} sim_to_real_ratio={:.2} events={}",
        wall.as_secs_f64(),
        sim_s / wall.as_secs_f64().max(1e-9),
        r.run.events
    );
}
