//! `haven agent`: run the agent of one managed machine in the foreground.
//!
//! In: the flags (stations, this node's id, address and labels, where its
//! logs go, the lease and fencing settings). Out: the node joined to the
//! cluster and its services run as the coordinator commands, until SIGTERM
//! or Ctrl-C, which kill every instance it runs.

use crate::agent::http_link::HttpLink;
use crate::agent::routed_link::{RouteSettings, RoutedLink};
use crate::agent::run::{AgentSettings, run};
use crate::agent::supervisor::SupervisorConfig;
use anyhow::{Context as _, bail};
use haven_client::ClientConfig;
use haven_ha::{AgentConfig, QuorumLossPolicy};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const AGENT_EXAMPLES: &str = "\
Examples:
  # Join the cluster of `haven up` as node 4, with a label services can select:
  haven agent --node 4 --address 127.0.0.1 --label disk=ssd --data-dir /tmp/agent4 \\
    --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479,http://127.0.0.1:2579

The agent keeps a lease at the stations (renewed every third of --lease-ttl-ms).
If it cannot renew it, it kills its singleton instances before the lease can
have expired at the stations (the clock-drift bound and --fence-margin-ms
allow for the difference), so the coordinator may start them elsewhere.
Stopped with SIGTERM or Ctrl-C, it kills its instances and then revokes its
lease, so their services move at once.

When the cluster has proxies (`haven proxy`), the agent renews its lease,
reports and fetches its commands through the one the stations assign it,
and falls back to the stations whenever that proxy does not answer.";

#[derive(Clone, Debug, clap::Args)]
#[command(after_help = AGENT_EXAMPLES)]
pub struct AgentArgs {
    /// Station client URLs, comma-separated; the agent fails over between them.
    #[arg(long, env = "HAVEN_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// This machine's node id (unique in the cluster, not a station's member id).
    #[arg(long, env = "HAVEN_NODE")]
    pub node: u64,
    /// The address services on this machine are reached at, for operators and clients.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// A label services can select this node by, as key=value; repeat for more.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Where instance logs and the agent's state go.
    #[arg(long, env = "HAVEN_AGENT_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The lease that keeps this node alive at the stations; a dead agent is
    /// noticed after about this long. It must outlast a station election
    /// (about 250 ms, at most about 450 ms with the stations' defaults) plus
    /// the renewal that waits on it, or agents self-fence when the station
    /// leader fails; below the stations' minimum (2x their election
    /// timeout) it is raised to it.
    #[arg(long, default_value_t = 900)]
    pub lease_ttl_ms: u64,
    /// How often the agent sends reports, and at most how often it asks for commands.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// How long a station may hold the agent's question for commands until
    /// they change (it answers as soon as a decision gives this node one);
    /// 0 asks every --poll-ms instead.
    #[arg(long, default_value_t = 1_000)]
    pub commands_wait_ms: u64,
    /// How much faster or slower than real time any clock here or at the stations may run.
    #[arg(long, default_value_t = 200)]
    pub drift_ppm_max: u64,
    /// How long before the lease can expire the agent starts killing its singletons.
    #[arg(long, default_value_t = 100)]
    pub fence_margin_ms: u64,
    /// What happens to replicated and every-node instances when the lease is lost
    /// (singletons are always killed): stop or freeze.
    #[arg(long, value_enum, default_value = "stop")]
    pub on_quorum_loss: QuorumLoss,
    /// Rotate an instance's log at this size.
    #[arg(long, default_value_t = 16 << 20)]
    pub log_bytes_max: u64,
    /// Log files kept per instance, the current one included.
    #[arg(long, default_value_t = 4)]
    pub log_files_max: u32,
    /// Always talk to the stations, even when they assign this agent a proxy.
    #[arg(long)]
    pub no_proxy: bool,
    /// While talking to the stations, how often to ask them for a proxy.
    #[arg(long, default_value_t = 1_000)]
    pub proxy_query_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QuorumLoss {
    Stop,
    Freeze,
}

fn labels(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for entry in list {
        let Some((key, value)) = entry.split_once('=') else { bail!("--label {entry}: write it as key=value") };
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(labels)
}

/// `--commands-wait-ms` (an agent's or a proxy's), checked against what a
/// station holds at most.
pub(crate) fn commands_wait(ms: u64) -> anyhow::Result<Duration> {
    let ms_max = haven_daemon::agent_api::COMMANDS_WAIT_MS_MAX;
    if ms > ms_max {
        bail!("--commands-wait-ms {ms}: at most {ms_max} (stations hold a question no longer)");
    }
    Ok(Duration::from_millis(ms))
}

fn settings(args: &AgentArgs) -> anyhow::Result<AgentSettings> {
    if args.node == 0 {
        bail!("--node 0: node ids start at 1");
    }
    if args.fence_margin_ms >= args.lease_ttl_ms / 2 {
        bail!("--fence-margin-ms {} must be below half of --lease-ttl-ms {}", args.fence_margin_ms, args.lease_ttl_ms);
    }
    if args.poll_ms == 0 || args.poll_ms * 3 > args.lease_ttl_ms {
        bail!("--poll-ms {} must be positive and at most a third of --lease-ttl-ms", args.poll_ms);
    }
    let commands_wait = commands_wait(args.commands_wait_ms)?;
    let on_quorum_loss = match args.on_quorum_loss {
        QuorumLoss::Stop => QuorumLossPolicy::Stop,
        QuorumLoss::Freeze => QuorumLossPolicy::Freeze,
    };
    let core = AgentConfig {
        node: NodeId(args.node),
        lease_ttl_ms: args.lease_ttl_ms,
        drift_ppm_max: args.drift_ppm_max,
        fence_margin_ms: args.fence_margin_ms,
        on_quorum_loss,
    };
    let shim = std::env::current_exe().context("finding the haven binary to start instances under")?;
    let supervisor = SupervisorConfig {
        log_dir: args.data_dir.join("logs"),
        shim: Some(shim),
        log_bytes_max: args.log_bytes_max,
        log_files_max: args.log_files_max,
    };
    Ok(AgentSettings {
        core,
        address: args.address.clone(),
        labels: labels(&args.labels)?,
        data_dir: args.data_dir.clone(),
        poll: Duration::from_millis(args.poll_ms),
        commands_wait,
        supervisor,
    })
}

pub async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let settings = settings(&args)?;
    // Short attempts: a renewal must fail over within a fraction of the TTL.
    let attempt = Duration::from_millis((args.lease_ttl_ms / 4).max(50));
    let config = ClientConfig {
        endpoints: args.endpoints.clone(),
        request_timeout: attempt,
        connect_timeout: attempt,
        rounds_max: 1,
        ..ClientConfig::default()
    };
    let node = NodeId(args.node);
    let stations = HttpLink::connect(config, settings.commands_wait, node).context("--endpoints")?;
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("--data-dir {}", args.data_dir.display()))?;
    tracing::info!(node = args.node, endpoints = ?args.endpoints, "agent starting");
    if args.no_proxy {
        run(stations, settings, haven_daemon::shutdown_signal()).await;
        return Ok(());
    }
    if args.proxy_query_ms == 0 {
        bail!("--proxy-query-ms 0: give how often to ask the stations for a proxy (1000 is the default)");
    }
    let route = RouteSettings {
        node,
        attempt,
        query_interval: Duration::from_millis(args.proxy_query_ms),
        // Past this, a dead proxy's lease has expired and its agents have moved.
        cooldown: Duration::from_millis(args.lease_ttl_ms * 3),
    };
    let link = RoutedLink::new(stations, route).context("building the HTTP client for proxies")?;
    run(link, settings, haven_daemon::shutdown_signal()).await;
    Ok(())
}
