//! Running one station: `haven station`.
//!
//! In: a [`StationConfig`] and a shutdown signal. Out: the member running
//! until the signal (or until its replica halts): the replica on the
//! production executor (peers over TCP, the write-ahead log in the data
//! directory, so a restart recovers everything acknowledged), and on the
//! client address the etcd v3 JSON API, the operator API under `/v1/`,
//! `/metrics`, `/health` and the forwarding endpoint; then everything closed and joined.

use crate::capped_listener::CappedListener;
use crate::checks::{Bound, bind, check_data_dir};
use crate::config::StationConfig;
use crate::error::DaemonError;
use crate::fence::{FenceRunner, FenceSettings};
use crate::handle::StationHandle;
use crate::http::routes;
use crate::in_span::InSpan;
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::removal_probe::watch_for_removal;
use crate::roster::Roster;
use haven_gateway::GatewayLimits;
use haven_net::{Limits, NodeConfig, UnknownPeers, local_channel};
use haven_runtime::NodeId;
use haven_station::{MemberRecord, Replica, ReplicaConfig, ReplicaEvent};
use rand::TryRng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// The node id the daemon's requests come from; never a member's (ids are
/// checked to be below it).
pub const LOCAL_CLIENT_ID: NodeId = NodeId(u64::MAX);
/// Replica messages queued each way between the replica and the handlers.
const LOCAL_QUEUE_LEN_MAX: usize = 16 * 1024;
/// How often a member whose client URL the member table lacks announces it.
const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// Room for a command's envelope (session ids, encoding) beyond the request.
const COMMAND_OVERHEAD_BYTES: u64 = 64 * 1024;

/// Runs the station until SIGTERM or SIGINT.
pub async fn run(config: StationConfig) -> Result<(), DaemonError> {
    run_until(config, shutdown_signal()).await
}

/// Runs the station until `shutdown` resolves.
pub async fn run_until(config: StationConfig, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let span = tracing::error_span!("station", node = config.id);
    async {
        check_data_dir(&config.data_dir)?;
        let bound = bind(&config).await?;
        serve(config, bound, shutdown).await
    }
    .instrument(span)
    .await
}

async fn serve(config: StationConfig, bound: Bound, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let roster = Arc::new(Roster::new(&config));
    let node_config = node_config(&config, &roster);
    let metrics = Arc::new(Metrics::new(node_config.counters.clone()));
    let progress = Arc::new(Progress::default());
    let (endpoint, client) = local_channel(LOCAL_CLIENT_ID, LOCAL_QUEUE_LEN_MAX);
    let ids_base = rand::rngs::SysRng.try_next_u64().map_err(|e| DaemonError::Entropy(e.to_string()))?;
    let fences = config.fence.clone().map(|f| FenceRunner::new(f, client.tx.clone(), metrics.clone()));
    let handle = StationHandle::start(&config, client, roster.clone(), progress.clone(), metrics.clone(), ids_base);
    let publisher =
        tokio::spawn(publish(handle.clone(), roster.clone(), config.me().client_url.clone()).in_current_span());
    let removal_probe =
        tokio::spawn(watch_for_removal(roster.clone(), progress.clone(), metrics.clone(), config.id).in_current_span());

    let (fatal_tx, mut fatal_rx) = watch::channel(None::<String>);
    let on_output = {
        let (progress, metrics) = (progress.clone(), metrics.clone());
        move |event: ReplicaEvent| {
            progress.observe(&event, &metrics);
            roster.observe(&event);
            match event {
                ReplicaEvent::Fatal { reason } => {
                    fatal_tx.send_replace(Some(reason));
                }
                ReplicaEvent::FenceRequested { node, address, session, attempt } => match &fences {
                    Some(fences) => fences.start(node, address, session, attempt),
                    None => tracing::error!(node = node.0, "asked to fence without a fence command; ignored"),
                },
                ReplicaEvent::HaStepTooLarge { bytes, bytes_max } => tracing::error!(
                    bytes,
                    bytes_max,
                    "the coordinator's smallest step is larger than a log entry may be, so it decides nothing; \
                     raise request_bytes_max (it bounds log entries too) or shorten the largest service definitions"
                ),
                _ => {}
            }
        }
    };
    let (stop_node, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = Replica::new(replica_config(&config));
    let node = haven_net::run_with_local(
        node_config,
        Some(bound.peer),
        replica,
        on_output,
        async move {
            let _ = node_stopped.await;
        },
        endpoint,
    );
    let node = tokio::spawn(node.in_current_span());

    let request_bytes_max = config.request_bytes_max;
    let limits = GatewayLimits { request_bytes_max, ..GatewayLimits::default() };
    let body_bytes_max = usize::try_from(request_bytes_max).unwrap_or(usize::MAX);
    let app = haven_gateway::router(handle.clone(), limits)
        .merge(routes(handle.clone(), metrics.clone(), body_bytes_max))
        .merge(crate::ha_api::router(handle.clone(), body_bytes_max))
        .merge(crate::proxy_api::router(handle))
        .merge(crate::dashboard::router());
    let app = tower::make::Shared::new(InSpan::new(app, tracing::Span::current()));
    let connections = metrics.client_connections.clone();
    let remedy = "if the clients are real, raise --client-connections-max";
    let listener = CappedListener::new(bound.client, config.client_connections_max, remedy, connections);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stopped.await;
    });
    let http = tokio::spawn(async move { http.await }.in_current_span());
    tracing::info!(peer = %config.listen_peer, client = %config.listen_client, members = config.members.len(), "station started");

    let fatal = tokio::select! {
        () = shutdown => None,
        changed = fatal_rx.wait_for(Option::is_some) => changed.ok().and_then(|reason| reason.clone()),
    };
    publisher.abort();
    removal_probe.abort();
    let _ = stop_http.send(());
    let _ = stop_node.send(());
    let http = http.await.map_err(|e| DaemonError::Panicked(e.to_string()))?;
    let node = node.await.map_err(|e| DaemonError::Panicked(e.to_string()))?;
    tracing::info!("station stopped");
    node?;
    http.map_err(DaemonError::Http)?;
    match fatal {
        Some(reason) => Err(DaemonError::Replica { reason }),
        None => Ok(()),
    }
}

fn node_config(config: &StationConfig, roster: &Arc<Roster>) -> NodeConfig {
    let mut node = NodeConfig::new(NodeId(config.id), config.listen_peer, roster.peers(), config.data_dir.clone());
    node.limits = Limits::default();
    node.peer_updates = Some(roster.peer_updates());
    node.advertise = Some(config.me().peer_addr);
    node.cluster = roster.cluster_known();
    let roster = roster.clone();
    node.unknown_peers = Some(UnknownPeers(Arc::new(move |id, addr| roster.admit_guest(id.0, addr))));
    node
}

/// Until the member table holds this member's client URL (a member added
/// at runtime starts without one), announces it, so the others can forward
/// to this member once it leads.
async fn publish(handle: StationHandle, roster: Arc<Roster>, client_url: String) {
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    loop {
        tick.tick().await;
        let Some(own) = roster.own_record() else { continue };
        if own.client_url == client_url {
            continue;
        }
        match handle.publish(client_url.clone()).await {
            Ok(()) => tracing::info!(client_url, "client URL published in the member table"),
            Err(e) => tracing::debug!(error = %e, "publishing the client URL failed; retrying"),
        }
    }
}

/// `--initial-cluster` as the member table holds it: every member a voter.
pub(crate) fn member_records(config: &StationConfig) -> Vec<MemberRecord> {
    let record = |m: &crate::cluster::MemberSpec| MemberRecord {
        id: m.id,
        peer_addr: m.peer_addr.to_string(),
        client_url: m.client_url.clone(),
        voter: true,
    };
    config.members.iter().map(record).collect()
}

/// The replica's settings: the daemon's timings and request size, the
/// library defaults for the rest.
pub fn replica_config(config: &StationConfig) -> ReplicaConfig {
    // A joining member knows the voters but is not one; it never campaigns.
    let voters = config.members.iter().filter(|m| !config.joining || m.id != config.id).map(|m| NodeId(m.id)).collect();
    let mut replica = ReplicaConfig::new(voters);
    if !config.joining {
        replica.members = member_records(config);
    }
    replica.raft.election_timeout_min = config.election_timeout;
    // 1-1.5x: see ELECTION_TIMEOUT_MS_DEFAULT for why not wider.
    replica.raft.election_timeout_max = config.election_timeout * 3 / 2;
    replica.raft.heartbeat_interval = config.heartbeat;
    replica.raft.stall_gap_min = Some(stall_gap_min(config.election_timeout, config.heartbeat));
    let command_bytes_max = config.request_bytes_max + COMMAND_OVERHEAD_BYTES;
    replica.raft.command_bytes_max = usize::try_from(command_bytes_max).unwrap_or(usize::MAX);
    replica.wal.entry_bytes_max = u32::try_from(command_bytes_max).unwrap_or(u32::MAX);
    replica.watches_max = config.watches_len_max;
    replica.history_revisions_max = config.history_revisions_max;
    replica.snapshot_entries = config.snapshot_entries;
    replica.snapshot_keys_per_turn = config.snapshot_keys_per_turn;
    // Agents poll their commands over HTTP; they are not Raft peers.
    replica.agent_commands_pushed = false;
    // Agents ask for leases under a second (`POST /haven/v1/leases`). One
    // shorter than the longest election could run out while its holder
    // looks for the new leader, whatever the holder does.
    replica.store.lease_ttl_ms_min = u64::try_from(replica.raft.election_timeout_max.as_millis()).unwrap_or(u64::MAX);
    replica.fence = config.fence.as_ref().map(FenceSettings::replica_config);
    replica
}

/// How long a station must have gone without running Raft for the silence
/// to count as its own stall, not its peers' (`RaftConfig::stall_gap_min`):
/// a third of the election timeout, and never under a heartbeat interval
/// (a busy turn is not a stall). The whole VM of the README's benchmarks at
/// times stops every station together for 150-230 ms; without this, each
/// such stop costs an election once the election timeout is below it.
pub fn stall_gap_min(election_timeout: Duration, heartbeat: Duration) -> Duration {
    (election_timeout / 3).max(heartbeat)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(error = %e, "cannot install a SIGTERM handler; only Ctrl-C stops the station");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}
