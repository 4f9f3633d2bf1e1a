//! `haven sim`: the simulator's front end.
//!
//! In: a `sim` subcommand. Out: on stdout, the scenario list, one run's
//! report (with `--trace`, its timeline first), a sweep's failures with the
//! command that replays each, or the benchmark's figures. The report line
//! and the sweep's last line have fixed formats that scripts may parse.

use crate::cli::SimCommand;
use anyhow::{Result, bail};
use haven_scenarios::ScenarioInfo;
use haven_sim::{RunReport, sweep};
use std::io::Write as _;
use std::time::Instant;

fn scenario(name: &str) -> Result<&'static ScenarioInfo> {
    haven_scenarios::find(name).ok_or_else(|| {
        let names: Vec<&str> = haven_scenarios::all().iter().map(|s| s.name).collect();
        anyhow::anyhow!("unknown scenario `{name}`; known scenarios: {} (see `haven sim list`)", names.join(", "))
    })
}

pub fn run(command: SimCommand) -> Result<()> {
    match command {
        SimCommand::List => {
            for s in haven_scenarios::all() {
                println!("{}\n  {}\n", s.name, s.summary);
            }
            Ok(())
        }
        SimCommand::Run { scenario: name, seed, trace, agents, proxies } if name == "ha-scale" => {
            crate::scale_cmd::run(seed, trace, agents, proxies)
        }
        SimCommand::Run { scenario: name, seed, trace, agents, proxies } => {
            if agents.is_some() || proxies.is_some() {
                bail!("--agents and --proxies apply to ha-scale only");
            }
            run_one(scenario(&name)?, seed, trace)
        }
        SimCommand::BenchCoordinator { nodes, steps } => crate::coordinator_bench::run(&nodes, steps),
        SimCommand::Sweep { scenario: name, seeds, jobs } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            run_sweep(scenario(&name)?, seeds, jobs)
        }
        SimCommand::Bench { seeds } => bench(seeds),
    }
}

fn run_one(info: &ScenarioInfo, seed: u64, trace: bool) -> Result<()> {
    let sink: Option<haven_sim::TraceSink> = trace.then(|| {
        Box::new(|line: &str| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }) as haven_sim::TraceSink
    });
    let report = (info.run)(seed, sink);
    println!("{}", report.line());
    if !report.is_ok() {
        std::process::exit(1);
    }
    Ok(())
}

fn replay_command(scenario: &str, seed: u64) -> String {
    format!("haven sim run --scenario {scenario} --seed {seed} --trace")
}

fn run_sweep(info: &ScenarioInfo, seeds: std::ops::Range<u64>, jobs: usize) -> Result<()> {
    let start = Instant::now();
    println!("sweeping {} seeds {}..{} on {jobs} threads", info.name, seeds.start, seeds.end);
    let report = sweep(seeds, jobs, |seed| (info.run)(seed, None));
    let failures: Vec<&RunReport> = report.failures().collect();
    for failure in &failures {
        println!("FAILED {}", failure.line());
        println!("  replay: {}", replay_command(info.name, failure.seed));
    }
    println!("seeds={} failures={} elapsed_s={:.1}", report.runs.len(), failures.len(), start.elapsed().as_secs_f64());
    if !failures.is_empty() {
        bail!("{} of {} seeds failed", failures.len(), report.runs.len());
    }
    Ok(())
}

/// Runs `seeds` election seeds one after another on one thread and reports
/// simulated events per second and simulated time per real time.
fn bench(seeds: u64) -> Result<()> {
    let info = scenario("election")?;
    let start = Instant::now();
    let (mut events, mut sim_ns) = (0u64, 0u128);
    for seed in 0..seeds {
        let report = (info.run)(seed, None);
        if !report.is_ok() {
            bail!("benchmark run failed: {}", report.line());
        }
        events += report.events;
        sim_ns += u128::from(report.sim_time.as_nanos());
    }
    let wall = start.elapsed().as_secs_f64();
    let sim_s = sim_ns as f64 / 1e9;
    println!("scenario=election nodes=5 seeds={seeds} threads=1");
    println!("events={events} sim_time_s={sim_s:.1} wall_time_s={wall:.2}");
    println!(
        "events_per_s={:.0} sim_to_real_ratio={:.0} ms_per_run={:.1}",
        events as f64 / wall,
        sim_s / wall,
        wall * 1e3 / seeds as f64
    );
    Ok(())
}
