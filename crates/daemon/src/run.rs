//! Running one station: `haven station`.
//!
//! In: a [`StationConfig`] and a shutdown signal. Out: the member running
//! until the signal (or until its replica halts): the replica on the
//! production executor (peers over TCP, the write-ahead log in the data
//! directory, so a restart recovers everything acknowledged), and on the
//! client address the etcd v3 JSON API, `/metrics`, `/health` and the
//! forwarding endpoint; then everything closed and joined.

use crate::checks::{Bound, bind, check_data_dir};
use crate::config::StationConfig;
use crate::error::DaemonError;
use crate::handle::StationHandle;
use crate::http::routes;
use crate::metrics::Metrics;
use crate::progress::Progress;
use haven_gateway::GatewayLimits;
use haven_net::{Limits, NodeConfig, local_channel};
use haven_runtime::NodeId;
use haven_station::{Replica, ReplicaConfig, ReplicaEvent};
use rand::TryRng;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::Instrument;

/// The node id the daemon's requests come from; never a member's (ids are
/// checked to be below it).
pub const LOCAL_CLIENT_ID: NodeId = NodeId(u64::MAX);
/// Replica messages queued each way between the replica and the handlers.
const LOCAL_QUEUE_LEN_MAX: usize = 16 * 1024;
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
    let node_config = node_config(&config);
    let metrics = Arc::new(Metrics::new(node_config.counters.clone()));
    let progress = Arc::new(Progress::default());
    let (endpoint, client) = local_channel(LOCAL_CLIENT_ID, LOCAL_QUEUE_LEN_MAX);
    let ids_base = rand::rngs::SysRng.try_next_u64().map_err(|e| DaemonError::Entropy(e.to_string()))?;
    let handle = StationHandle::start(&config, client, progress.clone(), metrics.clone(), ids_base);

    let (fatal_tx, mut fatal_rx) = watch::channel(None::<String>);
    let on_output = {
        let (progress, metrics) = (progress.clone(), metrics.clone());
        move |event: ReplicaEvent| {
            progress.observe(&event, &metrics);
            if let ReplicaEvent::Fatal { reason } = event {
                fatal_tx.send_replace(Some(reason));
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
    let app = haven_gateway::router(handle.clone(), limits).merge(routes(handle, metrics, request_bytes_max as usize));
    // Request handlers run in tasks of their own: give their logs the node id too.
    let span = tracing::Span::current();
    let app = app.layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
        next.run(request).instrument(span.clone())
    }));
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = axum::serve(bound.client, app).with_graceful_shutdown(async move {
        let _ = http_stopped.await;
    });
    let http = tokio::spawn(async move { http.await }.in_current_span());
    tracing::info!(peer = %config.listen_peer, client = %config.listen_client, members = config.members.len(), "station started");

    let fatal = tokio::select! {
        () = shutdown => None,
        changed = fatal_rx.wait_for(Option::is_some) => changed.ok().and_then(|reason| reason.clone()),
    };
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

fn node_config(config: &StationConfig) -> NodeConfig {
    NodeConfig {
        id: NodeId(config.id),
        listen: config.listen_peer,
        peers: config.members.iter().map(|m| (NodeId(m.id), m.peer_addr)).collect(),
        data_dir: config.data_dir.clone(),
        limits: Limits::default(),
        counters: Arc::default(),
    }
}

/// The replica's settings: the daemon's timings and request size, the
/// library defaults for the rest.
pub fn replica_config(config: &StationConfig) -> ReplicaConfig {
    let voters = config.members.iter().map(|m| NodeId(m.id)).collect();
    let mut replica = ReplicaConfig::new(voters);
    replica.raft.election_timeout_min = config.election_timeout;
    replica.raft.election_timeout_max = config.election_timeout * 2;
    replica.raft.heartbeat_interval = config.heartbeat;
    let command_bytes_max = config.request_bytes_max + COMMAND_OVERHEAD_BYTES;
    replica.raft.command_bytes_max = usize::try_from(command_bytes_max).unwrap_or(usize::MAX);
    replica.wal.entry_bytes_max = u32::try_from(command_bytes_max).unwrap_or(u32::MAX);
    replica.watches_max = config.watches_len_max;
    replica.history_revisions_max = config.history_revisions_max;
    replica
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
