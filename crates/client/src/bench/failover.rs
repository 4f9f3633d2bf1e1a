//! `haven bench failover`: how long writes stop when the leader freezes.
//!
//! In: loopback endpoints and the pid of each member, in the same order.
//! Each trial finds the leader, SIGSTOPs it, sends a fresh put every few
//! milliseconds to the other members and measures the time from the stop
//! to the first acknowledged put; then SIGCONTs the old leader and waits
//! for the cluster to settle. Out: each trial, the median and the max.
//! The frozen member is resumed on every exit path (guard, Ctrl-C, SIGTERM).

use crate::bench::stopped::{Stopped, check_pid, resume};
use crate::bench::{BenchOutput, check_loopback};
use crate::cli::status::ClusterStatus;
use crate::client::{Client, ClientConfig};
use crate::endpoint::parse_endpoints;
use crate::error::ClientError;
use crate::kv::PutRequest;
use clap::Args;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const FAILOVER_EXAMPLES: &str = "Example (a 3-member cluster whose member processes are 4101, 4102, 4103):
  haven bench failover --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479,http://127.0.0.1:2579 \\
      --pids 4101,4102,4103 --trials 5

--pids lists each endpoint's member process, in the same order as --endpoints.
The leader is frozen with SIGSTOP (not killed) and always resumed with SIGCONT,
also on Ctrl-C or an error. Only loopback endpoints are accepted.";

/// Puts in flight at most while the leader is frozen.
const WRITES_IN_FLIGHT_MAX: usize = 512;

#[derive(Clone, Debug, Args)]
#[command(after_help = FAILOVER_EXAMPLES)]
pub struct FailoverBenchArgs {
    /// Client URLs, comma-separated (loopback only), one per member.
    #[arg(long, env = "HAVEN_ENDPOINTS", value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// The member processes, in the order of --endpoints.
    #[arg(long, value_delimiter = ',', required = true)]
    pub pids: Vec<i32>,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub trials: u32,
    /// Interval between fresh puts while the leader is frozen, in milliseconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub write_interval_ms: u64,
    /// Time one put may take before it is abandoned, in milliseconds.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub write_timeout_ms: u64,
    /// A trial without a successful put for this long fails the benchmark, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub trial_timeout_ms: u64,
    /// Time the cluster gets to settle between trials, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub settle_timeout_ms: u64,
    #[arg(long, value_enum, default_value_t = BenchOutput::Table)]
    pub output: BenchOutput,
}

#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub trial: u32,
    pub stopped_pid: i32,
    pub stopped_endpoint: String,
    /// From SIGSTOP to the acknowledgement of the first put that succeeded.
    pub first_write_ms: f64,
    pub answered_by: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FailoverSummary {
    pub trials: u32,
    pub median_ms: f64,
    pub max_ms: f64,
}

/// Resumes every member when the benchmark ends, however it ends.
struct ResumeAll(Vec<i32>);

impl Drop for ResumeAll {
    fn drop(&mut self) {
        self.0.iter().for_each(|&pid| resume(pid));
    }
}

pub async fn run(args: FailoverBenchArgs) -> Result<(), ClientError> {
    let endpoints = parse_endpoints(&args.endpoints)?;
    check_loopback(&endpoints)?;
    if endpoints.len() != args.pids.len() {
        return Err(ClientError::usage(format!(
            "{} endpoints but {} pids: give one pid per endpoint, in the same order",
            endpoints.len(),
            args.pids.len()
        )));
    }
    args.pids.iter().try_for_each(|&pid| check_pid(pid))?;
    let _resume_all = ResumeAll(args.pids.clone());
    tokio::select! {
        result = trials(&args, &endpoints) => result,
        () = shutdown_signal() => Err(ClientError::Interrupted),
    }
}

async fn trials(args: &FailoverBenchArgs, endpoints: &[String]) -> Result<(), ClientError> {
    let mut results = Vec::new();
    for trial in 1..=args.trials {
        let (leader_index, _) = settle(args, endpoints).await?;
        let result = one_trial(args, endpoints, trial, leader_index).await?;
        match args.output {
            BenchOutput::Json => println!("{}", serde_json::to_string(&result).unwrap_or_default()),
            BenchOutput::Table => println!(
                "trial {}: froze the leader (pid {}, {}); first write acknowledged after {:.1} ms by {}",
                result.trial, result.stopped_pid, result.stopped_endpoint, result.first_write_ms, result.answered_by
            ),
        }
        results.push(result.first_write_ms);
    }
    settle(args, endpoints).await?;
    let summary = summarize(&results);
    match args.output {
        BenchOutput::Json => println!("{}", serde_json::to_string(&summary).unwrap_or_default()),
        BenchOutput::Table => println!(
            "failover: {} trials, leader freeze to next acknowledged write: median {:.1} ms, max {:.1} ms",
            summary.trials, summary.median_ms, summary.max_ms
        ),
    }
    Ok(())
}

pub(crate) fn summarize(results: &[f64]) -> FailoverSummary {
    let mut sorted = results.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    FailoverSummary {
        trials: u32::try_from(sorted.len()).unwrap_or(u32::MAX),
        median_ms: median,
        max_ms: sorted.last().copied().unwrap_or(0.0),
    }
}

/// Waits until every member answers, all name the same leader, it is one
/// of `endpoints`, and a put goes through. Returns the leader's index.
async fn settle(args: &FailoverBenchArgs, endpoints: &[String]) -> Result<(usize, ClusterStatus), ClientError> {
    let client = Client::new(ClientConfig {
        endpoints: endpoints.to_vec(),
        request_timeout: Duration::from_millis(args.write_timeout_ms),
        rounds_max: 1,
        ..ClientConfig::default()
    })?;
    let deadline = Instant::now() + Duration::from_millis(args.settle_timeout_ms);
    let mut last_problem = String::from("no status yet");
    while Instant::now() < deadline {
        match ClusterStatus::gather(&client).await {
            Ok(status) => match settled_leader(&status, endpoints) {
                Ok(index) => {
                    let probe = PutRequest {
                        key: b"bench/failover/settle".to_vec(),
                        value: b"1".to_vec(),
                        ..Default::default()
                    };
                    match client.put(&probe).await {
                        Ok(_) => return Ok((index, status)),
                        Err(error) => last_problem = error.to_string(),
                    }
                }
                Err(problem) => last_problem = problem,
            },
            Err(error) => last_problem = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ClientError::Bench(format!("the cluster did not settle within {} ms: {last_problem}", args.settle_timeout_ms)))
}

fn settled_leader(status: &ClusterStatus, endpoints: &[String]) -> Result<usize, String> {
    if let Some(down) = status.endpoints.iter().find(|e| e.status.is_none()) {
        return Err(format!("{} does not answer status", down.endpoint));
    }
    let leaders: std::collections::BTreeSet<u64> =
        status.endpoints.iter().filter_map(|e| e.status.as_ref()).map(|s| s.leader).collect();
    if leaders.len() != 1 || leaders.contains(&0) {
        return Err(format!("members disagree on the leader or know none: {leaders:?}"));
    }
    let (endpoint, _) = status.leader().ok_or("the leader does not answer")?;
    endpoints.iter().position(|e| e == endpoint).ok_or_else(|| {
        format!("the leader answers at {endpoint}, which is not in --endpoints: give every member's endpoint and pid")
    })
}

async fn one_trial(
    args: &FailoverBenchArgs,
    endpoints: &[String],
    trial: u32,
    leader_index: usize,
) -> Result<Trial, ClientError> {
    let others: Vec<Client> = endpoints
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != leader_index)
        .map(|(_, endpoint)| {
            Client::new(ClientConfig {
                endpoints: vec![endpoint.clone()],
                request_timeout: Duration::from_millis(args.write_timeout_ms),
                rounds_max: 1,
                ..ClientConfig::default()
            })
        })
        .collect::<Result<_, _>>()?;
    if others.is_empty() {
        return Err(ClientError::Bench("a failover needs at least two members".to_owned()));
    }
    let pid = args.pids[leader_index];
    let stopped = Stopped::new(pid)?;
    let frozen_at = Instant::now();
    let (elapsed, answered_by) = first_write(args, &others, trial, frozen_at).await?;
    drop(stopped);
    Ok(Trial {
        trial,
        stopped_pid: pid,
        stopped_endpoint: endpoints[leader_index].clone(),
        first_write_ms: elapsed.as_secs_f64() * 1_000.0,
        answered_by,
    })
}

/// Sends a fresh put every interval, round-robin over `others`, until one
/// is acknowledged; returns its acknowledgement time since `frozen_at`.
async fn first_write(
    args: &FailoverBenchArgs,
    others: &[Client],
    trial: u32,
    frozen_at: Instant,
) -> Result<(Duration, String), ClientError> {
    let mut in_flight = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(args.write_interval_ms));
    let give_up = tokio::time::sleep(Duration::from_millis(args.trial_timeout_ms));
    tokio::pin!(give_up);
    let mut sent = 0u64;
    loop {
        tokio::select! {
            () = &mut give_up => {
                return Err(ClientError::Bench(format!(
                    "trial {trial}: no write acknowledged within {} ms of freezing the leader",
                    args.trial_timeout_ms
                )));
            }
            _ = tick.tick(), if in_flight.len() < WRITES_IN_FLIGHT_MAX => {
                let client = others[(sent % others.len() as u64) as usize].clone();
                let put = PutRequest {
                    key: format!("bench/failover/{trial}/{sent}").into_bytes(),
                    value: b"x".to_vec(),
                    ..PutRequest::default()
                };
                in_flight.spawn(async move { client.put(&put).await.map(|_| client.endpoints()[0].clone()) });
                sent += 1;
            }
            Some(done) = in_flight.join_next() => {
                if let Ok(Ok(endpoint)) = done {
                    return Ok((frozen_at.elapsed(), endpoint));
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::status::EndpointStatus;
    use crate::kv::ResponseHeader;
    use crate::maintenance::StatusResponse;

    #[test]
    fn median_and_max() {
        let summary = summarize(&[300.0, 100.0, 200.0]);
        assert_eq!((summary.trials, summary.median_ms, summary.max_ms), (3, 200.0, 300.0));
        assert_eq!(summarize(&[4.0, 1.0, 3.0, 2.0]).median_ms, 2.5);
        assert_eq!(summarize(&[]).trials, 0);
    }

    fn member(endpoint: &str, id: u64, leader: u64) -> EndpointStatus {
        let header = ResponseHeader { member_id: id, ..ResponseHeader::default() };
        EndpointStatus {
            endpoint: endpoint.into(),
            status: Some(StatusResponse { header, leader, ..StatusResponse::default() }),
            error: None,
        }
    }

    #[test]
    fn settles_only_on_one_agreed_leader_among_the_endpoints() {
        let endpoints = vec!["http://a:1".to_owned(), "http://b:2".to_owned()];
        let agreed =
            ClusterStatus { members: vec![], endpoints: vec![member("http://a:1", 1, 2), member("http://b:2", 2, 2)] };
        assert_eq!(settled_leader(&agreed, &endpoints), Ok(1));
        let split =
            ClusterStatus { members: vec![], endpoints: vec![member("http://a:1", 1, 1), member("http://b:2", 2, 2)] };
        assert!(settled_leader(&split, &endpoints).unwrap_err().contains("disagree"));
        let elsewhere = ClusterStatus { members: vec![], endpoints: vec![member("http://c:3", 3, 3)] };
        assert!(settled_leader(&elsewhere, &endpoints).unwrap_err().contains("not in --endpoints"));
    }
}
