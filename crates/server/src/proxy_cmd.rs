//! `haven proxy`: run a proxy for many agents in the foreground.
//!
//! In: the flags (its node id, where it listens for agents, the stations,
//! its lease and batching settings). Out: a proxy serving agents on
//! `--listen` and batching their keep-alives and reports to the station
//! leader until SIGTERM or Ctrl-C (see `crate::proxy`).

use crate::agent::http_link::HttpLink;
use crate::proxy::Shared;
use crate::proxy::host::{self, HostSettings, INBOX_LEN_MAX};
use crate::proxy::member::{self, MemberSettings};
use crate::proxy::serve;
use anyhow::{Context as _, bail};
use haven_client::{ClientConfig, parse_endpoints};
use haven_daemon::capped_listener::{CappedListener, ConnectionCounts};
use haven_ha::{PROXY_AGENTS_MAX, ProxyConfig};
use haven_runtime::NodeId;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Agent connections a proxy holds open at once: each of its at most
/// `PROXY_AGENTS_MAX` agents keeps one or two (a long poll for commands
/// beside its reports), with room for reconnections still closing.
const PROXY_CONNECTIONS_MAX: usize = 4 * PROXY_AGENTS_MAX;

pub const PROXY_EXAMPLES: &str = "\
Examples:
  # A proxy, node 100, for the agents of the cluster of `haven up`:
  haven proxy --id 100 --listen 127.0.0.1:7100 \\
    --endpoints http://127.0.0.1:2379,http://127.0.0.1:2479,http://127.0.0.1:2579

The proxy joins the cluster as a node labelled haven.role=proxy and
haven.services=none (no service is placed on it). The stations assign agents to the live proxy with the
fewest agents; the agents renew their leases and report through it, and it
sends the leader one batch at a time. When it dies, its agents talk to the
stations until they are assigned to another proxy.";

#[derive(Clone, Debug, clap::Args)]
#[command(after_help = PROXY_EXAMPLES)]
pub struct ProxyArgs {
    /// This proxy's node id (unique among nodes; not a station's member id).
    #[arg(long, env = "HAVEN_NODE")]
    pub id: u64,
    /// Where agents reach this proxy (an IP and port).
    #[arg(long, default_value = "127.0.0.1:7100")]
    pub listen: SocketAddr,
    /// Station client URLs, comma-separated.
    #[arg(long, env = "HAVEN_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// The proxy's own lease; its agents move about this long after it dies.
    #[arg(long, default_value_t = 1_000)]
    pub lease_ttl_ms: u64,
    /// At most how often the commands of this proxy's agents are fetched.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// How long a station, and this proxy for its agents, may hold a
    /// question for commands until they change; 0 asks every --poll-ms.
    #[arg(long, default_value_t = 1_000)]
    pub commands_wait_ms: u64,
    /// A batch leaves this long after the oldest item in it arrived (or once full).
    #[arg(long, default_value_t = 20)]
    pub flush_ms: u64,
    /// Keep-alives and reports in one batch at most.
    #[arg(long, default_value_t = 500)]
    pub batch_len_max: usize,
}

fn core_config(args: &ProxyArgs) -> anyhow::Result<ProxyConfig> {
    if args.flush_ms == 0 || args.flush_ms * 5 > args.lease_ttl_ms {
        bail!("--flush-ms {} must be positive and at most a fifth of --lease-ttl-ms", args.flush_ms);
    }
    if args.batch_len_max == 0 {
        bail!("--batch-len-max 0: a batch needs room for one item");
    }
    let defaults = ProxyConfig::default();
    Ok(ProxyConfig {
        agents_max: PROXY_AGENTS_MAX,
        batch_len_max: args.batch_len_max,
        queue_len_max: defaults.queue_len_max.max(args.batch_len_max),
        flush_interval_ms: args.flush_ms,
        ..defaults
    })
}

pub async fn run_proxy(args: ProxyArgs) -> anyhow::Result<()> {
    if args.id == 0 {
        bail!("--id 0: node ids start at 1");
    }
    if args.poll_ms == 0 || args.poll_ms * 3 > args.lease_ttl_ms {
        bail!("--poll-ms {} must be positive and at most a third of --lease-ttl-ms", args.poll_ms);
    }
    let core = core_config(&args)?;
    let endpoints = parse_endpoints(&args.endpoints).context("--endpoints")?;
    let attempt = Duration::from_millis((args.lease_ttl_ms / 4).max(50));
    let config = ClientConfig {
        endpoints: endpoints.clone(),
        request_timeout: attempt,
        connect_timeout: attempt,
        rounds_max: 1,
        ..ClientConfig::default()
    };
    let id = NodeId(args.id);
    let commands_wait = crate::agent_cmd::commands_wait(args.commands_wait_ms)?;
    let link = HttpLink::connect(config, commands_wait, id).context("--endpoints")?;
    let connections_max = tracing::error_span!("proxy", node = args.id).in_scope(|| {
        let limit = crate::open_files::raise_open_files_limit();
        crate::open_files::connections_within(limit, PROXY_CONNECTIONS_MAX, "4 per agent")
    });
    let listener = haven_net::listen(args.listen).with_context(|| format!("--listen {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr().context("--listen")?);
    let remedy = "an agent holds one or two: look for agents that reconnect without closing";
    let listener = CappedListener::new(listener, connections_max, remedy, ConnectionCounts::default());

    let shared = Arc::new(Mutex::new(Shared::default()));
    let (inbox, inbox_rx) = mpsc::channel(INBOX_LEN_MAX);
    let wait = Duration::from_millis(core.reply_timeout_ms * 2);
    let settings = HostSettings { id, endpoints, waiters_len_max: 2 * core.agents_max, core };
    let changed = Arc::new(Notify::new());
    let host = tokio::spawn(host::run(settings, shared.clone(), changed.clone(), inbox_rx));
    let member =
        MemberSettings { id, url: url.clone(), address: args.listen.ip().to_string(), lease_ttl_ms: args.lease_ttl_ms };
    let lease = Arc::new(AtomicI64::new(0));
    let joined = tokio::spawn(member::stay_joined(link.clone(), member, lease.clone()));
    let every = Duration::from_millis(args.poll_ms);
    let poller = tokio::spawn(member::poll_commands(link.clone(), id, every, commands_wait, inbox.clone()));
    tracing::info!(id = args.id, %url, "proxy serving agents");
    let app = serve::router(inbox, shared, changed, wait);
    axum::serve(listener, app)
        .with_graceful_shutdown(haven_daemon::shutdown_signal())
        .await
        .context("serving agents")?;
    joined.abort();
    let _ = joined.await;
    member::leave(&link, &lease).await;
    poller.abort();
    host.abort();
    tracing::info!("proxy stopped");
    Ok(())
}
