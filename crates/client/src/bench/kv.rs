//! `haven bench kv`: a closed-loop load of puts or ranges over the etcd v3
//! JSON API, so the same client measures Haven and etcd.
//!
//! In: loopback endpoints and the workload shape. Out: per phase (number
//! of clients), the operations per second, p50/p99/p99.9/max latency, the
//! errors, and the Raft term change over the phase (elections). Each client
//! sends one request at a time; a phase stops at its duration or after
//! `--requests-max` requests, whichever comes first.

use crate::bench::connection::BenchConnection;
use crate::bench::histogram::Histogram;
use crate::bench::{BenchOutput, check_loopback};
use crate::cli::display::show_bytes;
use crate::cli::status::ClusterStatus;
use crate::cli::table::Table;
use crate::client::{Client, ClientConfig};
use crate::endpoint::parse_endpoints;
use crate::error::ClientError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, ValueEnum};
use rand::RngExt as _;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const KV_BENCH_EXAMPLES: &str = "Examples:
  haven bench kv --endpoints http://127.0.0.1:2379 --clients 16 --duration 10
  haven bench kv --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479,http://127.0.0.1:2579 --phases 1,16,64,256
  haven bench kv --op range --phases 1,64 --output json     one JSON line per phase

Run a put phase before a range phase so the ranges find keys. Each client holds
its own HTTP/1.1 connection unless --conns is given: then the clients share that
many connections (as etcd's benchmark tool shares gRPC connections), and since
HTTP/1.1 carries one request at a time, clients on one connection take turns and
their wait counts in their latency. Connections are spread over the endpoints in
turn. Only loopback endpoints are accepted. ELECTIONS is the rise of the highest
Raft term during the phase.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchOp {
    Put,
    Range,
}

#[derive(Clone, Debug, Args)]
#[command(after_help = KV_BENCH_EXAMPLES)]
pub struct KvBenchArgs {
    /// Client URLs, comma-separated (loopback only).
    #[arg(long, env = "HAVEN_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// Concurrent clients, when --phases is not given.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub clients: u32,
    /// Connections the clients share (default: one per client).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub conns: Option<u32>,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Bytes of each value written.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(0..=1_500_000))]
    pub value_bytes: u32,
    #[arg(long, value_enum, default_value_t = BenchOp::Put)]
    pub op: BenchOp,
    /// Client counts, one phase each, e.g. 1,16,64,256 (overrides --clients).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=4096), num_args = 1..=16)]
    pub phases: Vec<u32>,
    /// Distinct keys (8-byte decimal keys 00000000…).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub key_space: u64,
    /// Requests per phase at most, whatever the duration.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests_max: u64,
    /// Time for one request before it counts as an error, in milliseconds.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = BenchOutput::Table)]
    pub output: BenchOutput,
}

/// The figures of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    pub op: BenchOp,
    pub clients: u32,
    pub ops: u64,
    pub errors: u64,
    /// Up to one example of what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_example: Option<String>,
    pub seconds: f64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Rise of the highest Raft term over the phase; None if status failed.
    pub elections: Option<u64>,
}

/// What one client task measured.
#[derive(Default)]
struct ClientTally {
    histogram: Histogram,
    errors: u64,
    error_example: Option<String>,
}

pub async fn run(args: KvBenchArgs) -> Result<(), ClientError> {
    let endpoints = parse_endpoints(&args.endpoints)?;
    check_loopback(&endpoints)?;
    let phases = if args.phases.is_empty() { vec![args.clients] } else { args.phases.clone() };
    let status_client = Client::new(ClientConfig { endpoints: endpoints.clone(), ..ClientConfig::default() })?;
    if args.output == BenchOutput::Table {
        println!(
            "bench kv: op={:?} value_bytes={} key_space={} duration={}s conns={} endpoints={}",
            args.op,
            args.value_bytes,
            args.key_space,
            args.duration,
            args.conns.map_or_else(|| "one per client".to_owned(), |c| c.to_string()),
            endpoints.join(",")
        );
    }
    let mut table =
        Table::new(["CLIENTS", "OPS", "OPS/S", "P50-MS", "P99-MS", "P99.9-MS", "MAX-MS", "ERRORS", "ELECTIONS"]);
    for clients in phases {
        let term_before = ClusterStatus::gather(&status_client).await.ok().map(|s| s.term_max());
        let result = run_phase(&args, &endpoints, clients).await?;
        let term_after = ClusterStatus::gather(&status_client).await.ok().map(|s| s.term_max());
        let result = PhaseResult { elections: term_before.zip(term_after).map(|(a, b)| b.saturating_sub(a)), ..result };
        match args.output {
            BenchOutput::Json => println!("{}", serde_json::to_string(&result).unwrap_or_default()),
            BenchOutput::Table => {
                table.push(phase_row(&result));
                if let Some(example) = &result.error_example {
                    eprintln!("{} clients: {} errors, e.g. {example}", result.clients, result.errors);
                }
            }
        }
    }
    if args.output == BenchOutput::Table {
        print!("{}", table.render());
    }
    Ok(())
}

pub(crate) fn phase_row(result: &PhaseResult) -> Vec<String> {
    let elections = result.elections.map_or_else(|| "?".to_owned(), |n| n.to_string());
    vec![
        result.clients.to_string(),
        result.ops.to_string(),
        format!("{:.0}", result.ops_per_s),
        format!("{:.2}", result.p50_ms),
        format!("{:.2}", result.p99_ms),
        format!("{:.2}", result.p999_ms),
        format!("{:.2}", result.max_ms),
        result.errors.to_string(),
        elections,
    ]
}

async fn run_phase(args: &KvBenchArgs, endpoints: &[String], clients: u32) -> Result<PhaseResult, ClientError> {
    let conns = args.conns.map_or(clients, |c| c.min(clients)) as usize;
    let connections: Vec<Shared> =
        (0..conns).map(|i| Arc::new(Mutex::new(BenchConnection::new(&endpoints[i % endpoints.len()])))).collect();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..clients as usize {
        let worker = Worker {
            connection: connections[index % conns].clone(),
            path: path(args.op),
            op: args.op,
            value_b64: STANDARD.encode(random_value(args.value_bytes as usize)),
            key_space: args.key_space,
            timeout: Duration::from_millis(args.timeout_ms),
            deadline,
            issued: issued.clone(),
            requests_max: args.requests_max,
        };
        tasks.spawn(worker.run());
    }
    let mut total = ClientTally::default();
    while let Some(joined) = tasks.join_next().await {
        let tally = joined.map_err(|e| ClientError::Bench(format!("a client task failed: {e}")))?;
        total.histogram.merge(&tally.histogram);
        total.errors += tally.errors;
        total.error_example = total.error_example.or(tally.error_example);
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |us: u64| us as f64 / 1_000.0;
    let h = &total.histogram;
    Ok(PhaseResult {
        op: args.op,
        clients,
        ops: h.count(),
        errors: total.errors,
        error_example: total.error_example,
        seconds,
        ops_per_s: h.count() as f64 / seconds,
        p50_ms: ms(h.quantile(0.5)),
        p99_ms: ms(h.quantile(0.99)),
        p999_ms: ms(h.quantile(0.999)),
        max_ms: ms(h.max()),
        elections: None,
    })
}

fn path(op: BenchOp) -> &'static str {
    match op {
        BenchOp::Put => "/v3/kv/put",
        BenchOp::Range => "/v3/kv/range",
    }
}

fn random_value(bytes: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..bytes).map(|_| rng.random_range(b'a'..=b'z')).collect()
}

/// The 8-byte key for slot `n` of the key space.
pub(crate) fn bench_key(n: u64) -> String {
    format!("{:08}", n % 100_000_000)
}

/// A connection and the clients taking turns on it.
type Shared = Arc<Mutex<BenchConnection>>;

struct Worker {
    connection: Shared,
    path: &'static str,
    op: BenchOp,
    value_b64: String,
    key_space: u64,
    timeout: Duration,
    deadline: Instant,
    issued: Arc<AtomicU64>,
    requests_max: u64,
}

impl Worker {
    async fn run(self) -> ClientTally {
        let mut tally = ClientTally::default();
        while Instant::now() < self.deadline && self.issued.fetch_add(1, Ordering::Relaxed) < self.requests_max {
            let key = STANDARD.encode(bench_key(rand::rng().random_range(0..self.key_space)));
            let body = match self.op {
                BenchOp::Put => format!(r#"{{"key":"{key}","value":"{}"}}"#, self.value_b64),
                BenchOp::Range => format!(r#"{{"key":"{key}"}}"#),
            };
            let sent = Instant::now();
            let remaining = self.deadline.saturating_duration_since(sent) + self.timeout;
            match self.once(body, self.timeout.min(remaining)).await {
                Ok(()) => tally.histogram.record(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX)),
                Err(error) => {
                    tally.errors += 1;
                    tally.error_example.get_or_insert(error);
                    // A refused connection fails at once; do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        tally
    }

    /// One request; the wait for a shared connection counts in its time.
    async fn once(&self, body: String, timeout: Duration) -> Result<(), String> {
        let late = || format!("no answer within {} ms", timeout.as_millis());
        let deadline = tokio::time::Instant::now() + timeout;
        let mut connection = tokio::time::timeout_at(deadline, self.connection.lock()).await.map_err(|_| late())?;
        let answer = tokio::time::timeout_at(deadline, connection.post(self.path, body)).await;
        let (status, body) = answer.unwrap_or_else(|_| {
            connection.close();
            Err(late())
        })?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}: {}", status.as_u16(), show_bytes(&body[..body.len().min(200)])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: KvBenchArgs,
    }

    impl KvBenchArgs {
        fn parse_from<const N: usize>(argv: [&str; N]) -> KvBenchArgs {
            Cli::parse_from(argv).args
        }
    }

    #[tokio::test]
    async fn clients_sharing_fewer_connections_all_get_answers() {
        let (endpoint, accepted) = crate::bench::connection::tests::echo_server().await;
        let args = KvBenchArgs::parse_from(["kv", "--duration", "1", "--conns", "2", "--requests-max", "200"]);
        let result = run_phase(&args, &[endpoint], 5).await.unwrap();
        assert_eq!((result.ops, result.errors), (200, 0), "{:?}", result.error_example);
        assert_eq!(accepted.load(Ordering::SeqCst), 2, "five clients took turns on two connections");
    }

    #[test]
    fn keys_are_eight_bytes() {
        assert_eq!(bench_key(0), "00000000");
        assert_eq!(bench_key(99_999), "00099999");
        assert!((0..1000).map(|n| bench_key(n * 7919)).all(|k| k.len() == 8));
    }

    #[test]
    fn a_phase_row_shows_unknown_elections() {
        let result = PhaseResult {
            op: BenchOp::Put,
            clients: 16,
            ops: 1000,
            errors: 2,
            error_example: None,
            seconds: 1.0,
            ops_per_s: 999.6,
            p50_ms: 1.234,
            p99_ms: 5.0,
            p999_ms: 9.999,
            max_ms: 12.0,
            elections: None,
        };
        assert_eq!(phase_row(&result), ["16", "1000", "1000", "1.23", "5.00", "10.00", "12.00", "2", "?"]);
    }
}
