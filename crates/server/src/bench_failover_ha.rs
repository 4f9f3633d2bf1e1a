//! `haven bench failover-ha`: how long a singleton is unreachable when the
//! machine serving it crashes or freezes, on real processes on loopback.
//!
//! In: the number of trials per fault kind and a scratch directory. Out: on
//! stdout, the service's own start time (see [`crate::service_start`]), one
//! line per trial (kind, ms from the fault to the replacement answering
//! with a greater fencing token, old node → new node), and a table of p50,
//! p99 and max per kind with the lease TTL and the target verdict (p99 ≤
//! 1 s plus the service's own start time). The exit status is non-zero on
//! an error or a SAFETY failure (a frozen primary still serving its old
//! token a second after it woke up), not on a missed target: that is a
//! figure.
//!
//! It runs the cluster of `haven demo` ([`crate::ha_cluster`]), with
//! `haven agent`'s default lease and poll, and stops every process at the
//! end, on an error, and on Ctrl-C or SIGTERM. Faults are spread evenly
//! over the agent's renewal cycle ([`fault_phase`]).

use crate::agent::supervisor::group_alive;
use crate::ha_cluster::{self, HaCluster, NODES, STANDBYS, STEP_TIMEOUT, agent_default};
use crate::service_start::{self, StartTimes};
use anyhow::{Context as _, Result, bail};
use nix::unistd::Pid;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const FAILOVER_HA_EXAMPLES: &str = "\
Example (10 crashes and 10 freezes, the defaults; about a minute):
  cargo run --release -- bench failover-ha
  haven bench failover-ha --trials 20 --dir /tmp/failover-ha

What it does: starts 3 stations and 4 agents (nodes 1-4, haven agent's default
lease and poll) on loopback, applies the singleton web of `haven demo` with 2
standbys, and per trial faults the machine serving web:
  crash   SIGKILL to its agent and web's process group; the agent is started
          again once the replacement answers, and rejoins before the next trial;
  freeze  SIGSTOP to both; once the replacement answers they get SIGCONT, and
          its agent must fence the woken primary (kill its process group)
          within a second; if it still answers with its old token then, the
          run fails as a SAFETY failure.
Each fault comes at a different moment of the agent's lease renewal cycle
(after the cluster settled, a wait of n x 0.618... modulo 1 of a cycle for
trial n), as real failures do, instead of always just after the same turn.
A trial's time runs from the fault to the first HTTP answer of the new primary
with a greater fencing token, probed every --probe-interval-ms. Before the
trials it measures web's own start (cold, and a standby's promotion) so the
target, p99 <= 1 s + start, can be judged. Logs stay in --dir.";

/// How long a woken primary may still run: its agent fences it on its
/// first turn after waking (one poll, 50 ms by default).
const THAWED_FENCE_MS_MAX: u64 = 1_000;
/// Between two looks at the stations' view of the faulted node's lease.
const EXPIRY_POLL: Duration = Duration::from_millis(5);

#[derive(Clone, Debug, clap::Args)]
#[command(after_help = FAILOVER_HA_EXAMPLES)]
pub struct FailoverHaArgs {
    /// Trials of each fault kind (machine crash, frozen machine).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub trials: u32,
    /// Scratch directory for the cluster's data and logs; emptied first.
    /// Default: haven-failover-ha-<pid> in the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How often the new primary is probed while the service is down, in milliseconds.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub probe_interval_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Crash,
    Freeze,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash (SIGKILL)",
            Fault::Freeze => "freeze (SIGSTOP)",
        }
    }
}

/// One trial's figures.
struct Trial {
    failover_ms: f64,
    /// When a station first showed the faulted node's lease expired, if it
    /// was seen before the new primary answered (stations polled every
    /// [`EXPIRY_POLL`]): what follows it is Haven's decision, the command
    /// and the promotion.
    expired_ms: Option<f64>,
    /// Freeze only: from SIGCONT until the old primary's process group was
    /// gone, and whether it answered with its old token in between.
    thawed: Option<(f64, bool)>,
}

pub fn run(args: FailoverHaArgs) -> Result<()> {
    let binary = std::env::current_exe().context("finding the haven binary to start the cluster")?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("haven-failover-ha-{}", std::process::id())));
    println!("failover-ha: cluster data and logs in {}", dir.display());
    ha_cluster::run(&binary, &dir, async |cluster: &mut HaCluster| bench(cluster, &binary, &dir, &args).await)
}

async fn bench(cluster: &mut HaCluster, binary: &Path, dir: &Path, args: &FailoverHaArgs) -> Result<()> {
    let start = service_start::measure(binary, &dir.join("start-time"), args.trials).await?;
    print_start(&start);
    form(cluster).await?;
    let mut results = Vec::new();
    for fault in [Fault::Crash, Fault::Freeze] {
        let mut trials = Vec::new();
        for n in 1..=args.trials {
            trials.push(trial(cluster, fault, n, args).await?);
        }
        results.push((fault, trials));
    }
    print_table(&results, &start);
    Ok(())
}

/// Agents up, web applied, its primary answering and its standbys ready.
async fn form(cluster: &mut HaCluster) -> Result<()> {
    cluster.wait("station leader", || async { cluster.get("/v1/nodes").await.is_some() }).await?;
    for node in 1..=NODES {
        cluster.start_agent(node)?;
    }
    cluster.apply_web().await?;
    settle(cluster).await
}

/// Every node alive, web answering and all its standbys ready.
async fn settle(cluster: &HaCluster) -> Result<()> {
    let all_alive = || async { cluster.nodes_in("alive").await.len() == usize::try_from(NODES).unwrap_or(0) };
    cluster.wait("4 nodes alive", all_alive).await?;
    cluster.wait("answer from web's primary", || async { cluster.primary(None).await.is_some() }).await?;
    cluster.wait("2 ready standbys of web", || async { cluster.ready_standbys().await == STANDBYS }).await
}

async fn trial(cluster: &mut HaCluster, fault: Fault, n: u32, args: &FailoverHaArgs) -> Result<Trial> {
    settle(cluster).await?;
    let (old, answer) = cluster.primary(None).await.context("web's primary stopped answering")?;
    let old_token = answer.token().with_context(|| format!("node {old} answered without a token: {}", answer.body))?;
    let frozen_groups = cluster.instance_groups(old);
    // A machine fails at any moment of its agent's renewal cycle; the
    // moment the cluster settles does not (it follows an agent's turn).
    tokio::time::sleep(fault_phase(n)).await;
    let faulted = Instant::now();
    match fault {
        Fault::Crash => cluster.crash(old)?,
        Fault::Freeze => cluster.freeze(old)?,
    }
    let interval = Duration::from_millis(args.probe_interval_ms);
    let done = Cell::new(false);
    let answered = async {
        let found = replacement(cluster, old, old_token, faulted, interval).await;
        done.set(true);
        found
    };
    let (found, expired_ms) = tokio::join!(answered, expiry(cluster, old, faulted, &done));
    let (new, new_token, failover_ms) = found?;
    let expired =
        expired_ms.map_or("lease expiry not seen first".to_owned(), |ms| format!("lease expired +{ms:.0} ms"));
    println!(
        "{:<16} trial {n:>3}/{}  {failover_ms:>7.1} ms  node {old} -> node {new} (token {old_token} -> {new_token}; {expired})",
        fault.name(),
        args.trials
    );
    let thawed = match fault {
        Fault::Crash => {
            cluster.start_agent(old)?;
            None
        }
        Fault::Freeze => Some(thaw(cluster, old, old_token, &frozen_groups).await?),
    };
    let rejoined = || async { cluster.nodes_in("alive").await.contains(&old) };
    cluster.wait(&format!("rejoin of node {old}"), rejoined).await?;
    Ok(Trial { failover_ms, expired_ms, thawed })
}

/// How long trial `n` waits after the cluster settled before its fault:
/// `n` times the golden ratio, modulo 1, of one [`renewal_cycle`], so that
/// the trials' faults fall evenly over the cycle, and the same in every run.
fn fault_phase(n: u32) -> Duration {
    let fraction = (f64::from(n) * 0.618_033_988_749_895).fract();
    renewal_cycle().mul_f64(fraction)
}

/// An agent's renewal cycle with `haven agent`'s defaults: a third of its
/// lease TTL, plus the poll that may pass before the renewal goes out.
fn renewal_cycle() -> Duration {
    let default = |id: &str| -> u64 {
        let value = agent_default(id).unwrap_or_else(|| panic!("haven agent declares a default --{id}"));
        value.parse().unwrap_or_else(|_| panic!("haven agent's default --{id} is a number of ms: {value}"))
    };
    Duration::from_millis(default("lease_ttl_ms") / 3 + default("poll_ms"))
}

/// Probes until a node other than `old` answers with a token above
/// `old_token`: (that node, its token, ms since `faulted`).
async fn replacement(
    cluster: &HaCluster,
    old: u64,
    old_token: u64,
    faulted: Instant,
    interval: Duration,
) -> Result<(u64, u64, f64)> {
    loop {
        let found = cluster.primary(Some(old)).await;
        let elapsed = faulted.elapsed();
        if let Some((node, token)) = found.and_then(|(node, a)| Some((node, a.token()?)))
            && token > old_token
        {
            return Ok((node, token, elapsed.as_secs_f64() * 1e3));
        }
        if elapsed > STEP_TIMEOUT {
            let logs = cluster.dir().display();
            bail!("no new primary of web answered within {STEP_TIMEOUT:?} of the fault on node {old}; logs in {logs}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Polls the stations until they show `old`'s lease expired (ms since
/// `faulted`), or `done` is set first.
async fn expiry(cluster: &HaCluster, old: u64, faulted: Instant, done: &Cell<bool>) -> Option<f64> {
    while !done.get() {
        if cluster.nodes_in("expired").await.contains(&old) {
            return Some(faulted.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(EXPIRY_POLL).await;
    }
    None
}

/// Wakes the frozen node and waits until its agent has fenced the old
/// primary: its process group is gone. Fails loudly if the group is still
/// there [`THAWED_FENCE_MS_MAX`] after the wake-up while answering with
/// `old_token`. Returns ms from SIGCONT to the group gone, and whether it
/// answered with its old token in between.
async fn thaw(cluster: &HaCluster, old: u64, old_token: u64, groups: &[Pid]) -> Result<(f64, bool)> {
    cluster.thaw(old)?;
    let thawed = Instant::now();
    let mut served_old = false;
    while groups.iter().any(|g| group_alive(*g)) {
        let serving = cluster.web(old).await.and_then(|a| a.token()) == Some(old_token);
        served_old |= serving;
        if thawed.elapsed() > Duration::from_millis(THAWED_FENCE_MS_MAX) {
            let log = cluster.agent_log(old);
            if serving {
                let text = format!(
                    "SAFETY FAILURE: node {old}'s old primary still answers with fencing token {old_token} \
                     {THAWED_FENCE_MS_MAX} ms after it woke up, while a newer primary serves; \
                     its agent did not fence it (see {})",
                    log.display()
                );
                println!("{text}");
                bail!(text);
            }
            bail!(
                "node {old}'s old primary still runs {THAWED_FENCE_MS_MAX} ms after waking up; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok((thawed.elapsed().as_secs_f64() * 1e3, served_old))
}

/// The value at quantile `q` of `values` by nearest rank (so with fewer
/// than 100 values, p99 is the max).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

fn print_start(start: &StartTimes) {
    println!(
        "web's own start, {} samples: cold spawn to first answer p50 {:.1} ms, max {:.1} ms; \
         standby promotion (promote script to first answer with the new token) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        start.cold_ms.len(),
        quantile(&start.cold_ms, 0.5),
        quantile(&start.cold_ms, 1.0),
        quantile(&start.promotion_ms, 0.5),
        quantile(&start.promotion_ms, 0.99),
        quantile(&start.promotion_ms, 1.0),
    );
}

fn print_table(results: &[(Fault, Vec<Trial>)], start: &StartTimes) {
    let ttl = agent_default("lease_ttl_ms").unwrap_or_else(|| "?".to_owned());
    let poll = agent_default("poll_ms").unwrap_or_else(|| "?".to_owned());
    // web fails over to a warm standby: its start is the promotion.
    let target_ms = 1_000.0 + quantile(&start.promotion_ms, 0.99);
    println!();
    println!("lease TTL {ttl} ms, agent poll {poll} ms (haven agent's defaults); 3 stations, 4 agents, loopback");
    println!("target: p99 <= 1000 ms + web's start (promotion p99) = {target_ms:.1} ms");
    println!("FAULT             TRIALS   P50_MS   P99_MS   MAX_MS  VERDICT  AFTER_EXPIRY_P50_MS  AFTER_EXPIRY_MAX_MS");
    for (fault, trials) in results {
        let ms: Vec<f64> = trials.iter().map(|t| t.failover_ms).collect();
        let p99 = quantile(&ms, 0.99);
        let verdict = if p99 <= target_ms { "met" } else { "MISSED" };
        let after: Vec<f64> = trials.iter().filter_map(|t| Some(t.failover_ms - t.expired_ms?)).collect();
        println!(
            "{:<16} {:>7} {:>8.1} {:>8.1} {:>8.1}  {verdict:<7} {:>19.1} {:>20.1}",
            fault.name(),
            ms.len(),
            quantile(&ms, 0.5),
            p99,
            quantile(&ms, 1.0),
            quantile(&after, 0.5),
            quantile(&after, 1.0)
        );
    }
    let thawed: Vec<(f64, bool)> = results.iter().flat_map(|(_, t)| t.iter().filter_map(|t| t.thawed)).collect();
    if !thawed.is_empty() {
        let gone_ms: Vec<f64> = thawed.iter().map(|(ms, _)| *ms).collect();
        println!(
            "woken primaries fenced by their agents: process group gone p50 {:.1} ms, max {:.1} ms after SIGCONT; \
             answered with the old token meanwhile in {} of {} trials",
            quantile(&gone_ms, 0.5),
            quantile(&gone_ms, 1.0),
            thawed.iter().filter(|(_, served)| *served).count(),
            thawed.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, fault_phase, quantile, renewal_cycle};

    #[test]
    fn fault_phases_spread_over_the_renewal_cycle() {
        let cycle = renewal_cycle();
        assert_eq!(cycle, Duration::from_millis(900 / 3 + 50), "haven agent's defaults");
        let mut phases: Vec<Duration> = (1..=10).map(fault_phase).collect();
        assert!(phases.iter().all(|p| *p < cycle), "{phases:?}");
        phases.sort();
        let widest = phases.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(widest < cycle / 4, "ten trials leave no quarter of the cycle out: {phases:?}");
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&ten, 0.5), 5.0);
        assert_eq!(quantile(&ten, 0.99), 10.0);
        assert_eq!(quantile(&ten, 1.0), 10.0);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&hundred, 0.99), 99.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
