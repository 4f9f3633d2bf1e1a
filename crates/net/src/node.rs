//! Running one node.
//!
//! In: a [`NodeConfig`], optionally an already-bound listener, the node's
//! top component, a callback for its outputs and a shutdown future.
//! Optionally an in-process client's endpoint ([`run_with_local`]).
//! Out: a running node until shutdown resolves — the listener and its
//! inbound connections, one sender task per peer, the disk worker and the
//! event loop — then everything closed and joined, so the same port and
//! data directory can be used again at once.

use crate::acceptor::Acceptor;
use crate::config::NodeConfig;
use crate::disk::DiskWorker;
use crate::error::NetError;
use crate::event_loop::{EventLoop, Inputs};
use crate::inbound::InboundShared;
use crate::link::Link;
use crate::local::{LocalEndpoint, LocalOut};
use crate::send_queue::SendQueue;
use haven_runtime::{Component, Host, Message, NodeId};
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
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
/// node's nor a peer's.
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
    config: NodeConfig,
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
            None => TcpListener::bind(config.listen)
                .await
                .map_err(|source| NetError::Listen { addr: config.listen, source })?,
        };
        let rng =
            haven_runtime::Rng::try_from_rng(&mut rand::rngs::SysRng).map_err(|e| NetError::Entropy(e.to_string()))?;
        let span = tracing::Span::current();
        let disk_batch_len_max = config.limits.disk_batch_len_max;
        let (disk, completions) =
            DiskWorker::spawn(config.data_dir.clone(), disk_batch_len_max, counters.clone(), span)?;
        tracing::info!(listen = ?listener.local_addr().ok(), peers = config.remote_peers().len(), "node starting");

        let (inbound_tx, inbound) = mpsc::channel(config.limits.inbound_queue_len_max);
        let (mut tasks, queues) = spawn_network(&config, listener, inbound_tx.clone());
        let host = Host::new(config.id, component, rng);
        let (local, local_rx) = match local {
            Some(endpoint) => {
                let LocalEndpoint { id, from_client, to_client } = endpoint;
                (Some(LocalOut { id, to_client }), Some(from_client))
            }
            None => (None, None),
        };
        let event_loop = EventLoop::new(host, queues, inbound_tx, disk, on_output, counters, local);
        let disk = event_loop.run(Inputs { inbound, completions, local: local_rx }, shutdown).await;

        // Aborting the tasks closes the listener and every connection; waiting
        // for them means the port is free when we return.
        tasks.shutdown().await;
        disk.stop().await;
        tracing::info!("node stopped");
        Ok(())
    }
    .instrument(span)
    .await
}

/// Starts the acceptor and one sender task per peer; returns the tasks and
/// the queues that feed the senders.
fn spawn_network<M: Message>(
    config: &NodeConfig,
    listener: TcpListener,
    inbound: mpsc::Sender<(NodeId, M)>,
) -> (JoinSet<()>, BTreeMap<NodeId, SendQueue<M>>) {
    let limits = &config.limits;
    let counters = &config.counters;
    let mut tasks = JoinSet::new();
    let shared = InboundShared {
        newest: config.remote_peers().into_keys().map(|id| (id, watch::Sender::new(0))).collect(),
        inbound,
        counters: counters.clone(),
        frame_bytes_max: limits.frame_bytes_max,
        hello_timeout: limits.hello_timeout(),
    };
    let acceptor = Acceptor::new(listener, limits.inbound_connections_max, Arc::new(shared));
    tasks.spawn(acceptor.run().in_current_span());

    let mut queues = BTreeMap::new();
    let warning_interval = Duration::from_millis(limits.drop_warning_interval_ms_min);
    for (peer, addr) in config.remote_peers() {
        let (queue, rx) = SendQueue::new(peer, limits.send_queue_len_max, warning_interval, counters.clone());
        queues.insert(peer, queue);
        let link = Link::new(config.id, addr, rx, limits.clone(), counters.clone());
        tasks.spawn(link.run().instrument(tracing::error_span!("link", peer = %peer)));
    }
    (tasks, queues)
}
