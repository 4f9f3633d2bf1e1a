//! Running one node.
//!
//! In: a [`NodeConfig`], optionally an already-bound listener, the node's
//! top component, a callback for its outputs and a shutdown future.
//! Optionally an in-process client's endpoint ([`run_with_local`]).
//! Out: a running node until shutdown resolves — the listener and its
//! inbound connections, one sender task per current peer, the disk worker
//! and the event loop — then everything closed and joined, so the same port
//! and data directory can be used again at once.

use crate::config::NodeConfig;
use crate::disk::DiskWorker;
use crate::error::NetError;
use crate::event_loop::{EventLoop, Inputs};
use crate::local::{LocalEndpoint, LocalOut};
use crate::network::Network;
use haven_runtime::{Component, Host};
use rand::SeedableRng;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Runs `component` as node `config.id` until `shutdown` resolves.
///
/// Use `listener` to hand over a socket bound beforehand (e.g. on port 0,
/// to learn the port before building the peer map); otherwise the node binds
/// `config.listen`. Every log line of the node carries `node = <id>`.
pub async fn run<C, F, S>(
    config: NodeConfig,
    listener: Option<TcpListener>,
    component: C,
    on_output: F,
    shutdown: S,
) -> Result<(), NetError>
where
    C: Component + Send + 'static,
    C::Timer: Send,
    C::Io: Send,
    C::Out: Send,
    F: FnMut(C::Out) + Send + 'static,
    S: Future<Output = ()>,
{
    run_inner(config, listener, component, on_output, shutdown, None).await
}

/// As [`run`], with an in-process client: messages sent on the client's
/// channel reach the component from `local.id()`, and whatever the
/// component sends to that id goes to the client's bounded channel (full:
/// dropped and counted) instead of the network. The id must be neither the
/// node's nor a peer's, now or in any later peer map (an update naming it
/// is logged and ignored).
pub async fn run_with_local<C, F, S>(
    config: NodeConfig,
    listener: Option<TcpListener>,
    component: C,
    on_output: F,
    shutdown: S,
    local: LocalEndpoint<C::Msg>,
) -> Result<(), NetError>
where
    C: Component + Send + 'static,
    C::Timer: Send,
    C::Io: Send,
    C::Out: Send,
    F: FnMut(C::Out) + Send + 'static,
    S: Future<Output = ()>,
{
    local.check(config.id, &config.peers)?;
    run_inner(config, listener, component, on_output, shutdown, Some(local)).await
}

async fn run_inner<C, F, S>(
    mut config: NodeConfig,
    listener: Option<TcpListener>,
    component: C,
    on_output: F,
    shutdown: S,
    local: Option<LocalEndpoint<C::Msg>>,
) -> Result<(), NetError>
where
    C: Component,
    F: FnMut(C::Out),
    S: Future<Output = ()>,
{
    config.check()?;
    // ERROR level so the span (and the node id) is on every line whatever
    // the subscriber's level filter.
    let span = tracing::error_span!("node", node = %config.id);
    async move {
        let counters = config.counters.clone();
        tokio::fs::create_dir_all(&config.data_dir)
            .await
            .map_err(|source| NetError::DataDir { path: config.data_dir.clone(), source })?;
        let listener = match listener {
            Some(listener) => listener,
            None => crate::listen(config.listen).map_err(|source| NetError::Listen { addr: config.listen, source })?,
        };
        let rng =
            haven_runtime::Rng::try_from_rng(&mut rand::rngs::SysRng).map_err(|e| NetError::Entropy(e.to_string()))?;
        let span = tracing::Span::current();
        let disk_batch_len_max = config.limits.disk_batch_len_max;
        let (disk, completions) =
            DiskWorker::spawn(config.data_dir.clone(), disk_batch_len_max, counters.clone(), span)?;
        tracing::info!(listen = ?listener.local_addr().ok(), peers = config.remote_peers().len(), "node starting");

        let (inbound_tx, inbound) = mpsc::channel(config.limits.inbound_queue_len_max);
        let reserved = local.as_ref().map(LocalEndpoint::id);
        let network = Network::start(&config, reserved, listener, inbound_tx.clone());
        let peer_updates = config.peer_updates.take();
        let host = Host::new(config.id, component, rng);
        let (local, local_rx) = match local {
            Some(endpoint) => {
                let LocalEndpoint { id, from_client, to_client } = endpoint;
                (Some(LocalOut { id, to_client }), Some(from_client))
            }
            None => (None, None),
        };
        let event_loop = EventLoop::new(host, network, inbound_tx, disk, on_output, counters, local);
        let inputs = Inputs { inbound, completions, local: local_rx, peer_updates };
        let (disk, network) = event_loop.run(inputs, shutdown).await;

        // Stopping the network closes the listener and every connection;
        // waiting for its tasks means the port is free when we return.
        network.stop().await;
        disk.stop().await;
        tracing::info!("node stopped");
        Ok(())
    }
    .instrument(span)
    .await
}
