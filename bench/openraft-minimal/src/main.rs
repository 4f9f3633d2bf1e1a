//! `openraft-minimal`: committed writes per second of a 3-member openraft
//! group in one process, in the shape of openraft's own minimal benchmark
//! (in-memory log and state machine, a network of direct calls), with the
//! workload of `haven bench raft-core` (64-byte puts, 1 and 256 closed-loop
//! clients, 20,000 and 200,000 writes by default).
//!
//! In: the command line. Out: one header line, then one line per run in the
//! `key=value` form haven's bench prints, so a script can pair them.

mod cluster;
mod log_store;
mod network;
mod snapshot_codec;
mod state_machine;
mod types;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cluster::Cluster;
use std::time::Instant;
use types::{BenchRaft, Put};

const MEMBERS: u64 = 3;
/// Bytes of each value written, as in haven's bench.
const VALUE_BYTES: usize = 64;

#[derive(Debug, Parser)]
#[command(about = "Committed writes/s of a 3-member openraft group in one process (1 and 256 clients)")]
struct Args {
    /// Writes to acknowledge in the 1-client run (the 256-client run does 10 times as many), as haven's default.
    #[arg(long, default_value_t = 20_000)]
    writes: u64,
    /// Tokio worker threads; 1 runs everything on one thread, as haven's simulator does
    /// [default: the machine's cores].
    #[arg(long)]
    worker_threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.writes == 0 {
        bail!("--writes must be positive");
    }
    let threads = match args.worker_threads {
        Some(0) => bail!("--worker-threads must be positive"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "openraft-minimal: {MEMBERS} members in one process, direct-call network, in-memory log and state machine, \
         {VALUE_BYTES}-byte puts, {threads} tokio worker thread(s)"
    );
    for (clients, writes) in [(1u64, args.writes), (256, args.writes * 10)] {
        let runtime = runtime(threads)?;
        runtime.block_on(run(clients, writes))?;
    }
    Ok(())
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build().context("building the tokio runtime")
}

/// One run on a fresh cluster: `clients` tasks share `writes` puts, each
/// task sending its next put when the previous one is applied.
async fn run(clients: u64, writes: u64) -> Result<()> {
    let cluster = Cluster::start(MEMBERS, cluster::config()?).await?;
    let calls_before = cluster.router.append_calls();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let share = writes / clients + u64::from(client < writes % clients);
        tasks.push(tokio::spawn(client_loop(cluster.leader().clone(), client, share)));
    }
    let (mut acked, mut revision_max) = (0, 0);
    for task in tasks {
        let (done, last_revision) = task.await.context("a client task panicked")??;
        acked += done;
        revision_max = revision_max.max(last_revision);
    }
    let wall = start.elapsed().as_secs_f64();
    let calls = cluster.router.append_calls() - calls_before;
    if revision_max != acked {
        // Every put gets the next revision, so the last one given is the count applied.
        bail!("{acked} writes acknowledged but the last revision given was {revision_max}");
    }
    println!(
        "clients={clients} writes={acked} wall_s={wall:.2} writes_per_s={:.0} append_rpcs_per_write={:.2}",
        acked as f64 / wall,
        calls as f64 / acked as f64
    );
    cluster.shutdown().await
}

/// Returns the writes acknowledged and the last revision the client was given.
async fn client_loop(leader: BenchRaft, client: u64, writes: u64) -> Result<(u64, u64)> {
    let key = format!("load/{client}");
    let value = vec![b'x'; VALUE_BYTES];
    let mut last_revision = 0;
    for _ in 0..writes {
        let put = Put { key: key.clone(), value: value.clone() };
        let reply = leader.client_write(put).await.with_context(|| format!("client {client}'s write"))?;
        if reply.data.0 <= last_revision {
            bail!("client {client} got revision {} after {last_revision}", reply.data.0);
        }
        last_revision = reply.data.0;
    }
    Ok((writes, last_revision))
}
