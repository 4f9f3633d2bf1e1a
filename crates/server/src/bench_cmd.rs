//! `haven bench`: benchmarks that print figures.
//!
//! In: a bench subcommand. Out: one line per run with its figures, timed on
//! the wall clock here (the simulator itself never reads it); `failover-ha`
//! lives in its own module.

use crate::bench_failover_ha;
use crate::bench_store;
use crate::cli::BenchCommand;
use crate::client_cmd;
use anyhow::Result;
use haven_scenarios::kv::bench;
use std::time::Instant;

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::RaftCore { writes } => raft_core(writes),
        BenchCommand::Kv(args) => client_cmd::block_on(haven_client::bench::kv::run(args)),
        BenchCommand::Failover(args) => client_cmd::block_on(haven_client::bench::failover::run(args)),
        BenchCommand::Fsync(args) => Ok(haven_client::bench::fsync::run(args)?),
        BenchCommand::FailoverHa(args) => bench_failover_ha::run(args),
        BenchCommand::Store { puts, keys, value_bytes, history } => {
            bench_store::run(&bench_store::StoreBenchArgs { puts, keys, value_bytes, history })
        }
    }
}

fn raft_core(writes: u64) -> Result<()> {
    println!(
        "raft-core: {} members in one process, in-memory network with no latency, no disk delay, {}-byte puts",
        bench::MEMBERS,
        bench::VALUE_BYTES
    );
    for (clients, writes) in [(1usize, writes), (256, writes * 10)] {
        let start = Instant::now();
        let run = bench::raft_core(clients, writes);
        let wall = start.elapsed().as_secs_f64();
        println!(
            "clients={clients} writes={} wall_s={wall:.2} writes_per_s={:.0} events_per_write={:.1}",
            run.writes,
            run.writes as f64 / wall,
            run.events as f64 / run.writes as f64
        );
    }
    Ok(())
}
