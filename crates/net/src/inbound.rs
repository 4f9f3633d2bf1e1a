//! The receiving half of a link: one accepted connection.
//!
//! In: bytes from whoever connected. Out: `(sender, message)` pairs on the
//! event loop's bounded inbound channel; or, for anything not a well-formed
//! conversation with a known peer, an error log naming the remote address
//! and the reason, a counter bump and a closed connection.
//!
//! A conversation is a hello (within `hello_timeout_ms_max`, from a node in
//! the peer map, speaking `WIRE_VERSION`) followed by message frames. When
//! the same peer connects again, the older connection is closed: the peer
//! only dials anew when it believes the old one dead, and a half-open socket
//! would otherwise linger forever. When a peer leaves the peer map, its
//! connection is closed too (its entry in [`InboundShared::newest`] is gone).

use crate::config::UnknownPeers;
use crate::counters::{Counters, add, bump};
use crate::frame::{Frame, FrameError, FrameReader};
use haven_runtime::wire::WIRE_VERSION;
use haven_runtime::{Message, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thiserror::Error;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Read buffer per connection.
const READ_BUF_BYTES: usize = 64 * 1024;
/// How often hellos from one node outside the peer map are logged as an
/// error; the rest go to debug. A removed member that keeps running dials
/// every couple of seconds until it is stopped, and each attempt would
/// otherwise be an error line on every member.
const UNKNOWN_NODE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Nodes outside the peer map remembered for that; their ids come off the
/// wire, so the memory is bounded.
const UNKNOWN_NODES_REMEMBERED_MAX: usize = 64;

/// What every inbound connection of a node shares.
#[derive(Debug)]
pub(crate) struct InboundShared<M> {
    /// For each peer of the current peer map, the sequence number of its
    /// newest accepted connection; older connections from that peer watch it
    /// and close, and all of them close when the entry is dropped (the peer
    /// left the map). The lock is never held across an await.
    pub(crate) newest: Mutex<BTreeMap<NodeId, watch::Sender<u64>>>,
    pub(crate) inbound: mpsc::Sender<(NodeId, M)>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) frame_bytes_max: u32,
    pub(crate) hello_timeout: Duration,
    /// When each node outside the peer map was last logged as an error.
    pub(crate) unknown_told: Mutex<BTreeMap<NodeId, Instant>>,
    pub(crate) unknown_peers: Option<UnknownPeers>,
    /// This node's cluster id, 0 while not known.
    pub(crate) cluster: Arc<AtomicU64>,
}

impl<M> InboundShared<M> {
    /// Whether a hello from `node`, which is not in the peer map, should be
    /// logged as an error now (at most once per `UNKNOWN_NODE_LOG_INTERVAL`).
    fn tell_unknown(&self, node: NodeId) -> bool {
        let now = Instant::now();
        let mut told = self.unknown_told.lock().unwrap_or_else(PoisonError::into_inner);
        if told.len() >= UNKNOWN_NODES_REMEMBERED_MAX && !told.contains_key(&node) {
            told.retain(|_, at| now.duration_since(*at) < UNKNOWN_NODE_LOG_INTERVAL);
            if told.len() >= UNKNOWN_NODES_REMEMBERED_MAX {
                told.clear();
            }
        }
        let recent = told.get(&node).is_some_and(|at| now.duration_since(*at) < UNKNOWN_NODE_LOG_INTERVAL);
        if !recent {
            told.insert(node, now);
        }
        !recent
    }
}

/// Why an inbound connection was closed.
#[derive(Debug, Error)]
enum InboundError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("no hello within {0:?}")]
    HelloTimeout(Duration),
    #[error("first frame is not a hello")]
    NotHello,
    #[error(
        "hello from {0}, which is not in the peer map: a removed member still running, \
         or one configured for another cluster?"
    )]
    UnknownNode(NodeId, Option<SocketAddr>),
    #[error(
        "hello from {node} of cluster {theirs:x}, and this node is in cluster {ours:x}: \
         is that station configured with this cluster's addresses by mistake?"
    )]
    OtherCluster { node: NodeId, theirs: u64, ours: u64 },
    #[error("hello announces wire version {0}, this node speaks {WIRE_VERSION}")]
    WireVersion(u8),
    #[error("second hello on one connection")]
    SecondHello,
    #[error("superseded by a newer connection from the same peer")]
    Superseded,
    #[error("the peer left the peer map")]
    Removed,
}

impl InboundError {
    /// The node behind a refusal that it will retry every couple of seconds
    /// (a removed member still running, a station of another cluster), so
    /// that only one attempt a minute is logged as an error.
    fn retrying_node(&self) -> Option<NodeId> {
        match self {
            InboundError::UnknownNode(node, _) | InboundError::OtherCluster { node, .. } => Some(*node),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inbound<M> {
    addr: SocketAddr,
    seq: u64,
    reader: FrameReader<BufReader<TcpStream>>,
    shared: Arc<InboundShared<M>>,
}

impl<M: Message> Inbound<M> {
    /// `seq` numbers this node's accepted connections, increasing.
    pub(crate) fn new(stream: TcpStream, addr: SocketAddr, seq: u64, shared: Arc<InboundShared<M>>) -> Self {
        let reader = FrameReader::new(BufReader::with_capacity(READ_BUF_BYTES, stream), shared.frame_bytes_max);
        Inbound { addr, seq, reader, shared }
    }

    /// Receives until the peer closes, errs, or the node shuts down.
    pub(crate) async fn run(mut self) {
        match self.serve().await {
            Ok(()) => tracing::debug!(addr = %self.addr, "inbound connection closed"),
            // The peer reconnected: routine, not the peer's fault.
            Err(InboundError::Superseded) => {
                tracing::info!(addr = %self.addr, "closing inbound connection superseded by a newer one")
            }
            // The operator removed the peer: routine too.
            Err(InboundError::Removed) => {
                tracing::info!(addr = %self.addr, "closing inbound connection of a peer removed from the peer map")
            }
            Err(InboundError::UnknownNode(node, Some(listen))) if self.admit(node, listen) => {
                bump(&self.shared.counters.inbound_errors);
                tracing::info!(addr = %self.addr, peer = %node, "hello from a node not in the peer map, which joins the map: its next hello is accepted");
            }
            Err(reason) => {
                bump(&self.shared.counters.inbound_errors);
                match reason.retrying_node() {
                    Some(node) if !self.shared.tell_unknown(node) => {
                        tracing::debug!(addr = %self.addr, reason = %reason, "closing inbound connection")
                    }
                    Some(_) => tracing::error!(
                        addr = %self.addr,
                        reason = %reason,
                        "closing inbound connection; its next attempts in the coming minute are logged at debug"
                    ),
                    None => tracing::error!(addr = %self.addr, reason = %reason, "closing inbound connection"),
                }
            }
        }
    }

    /// Whether the hook for nodes outside the peer map lets `node` in.
    fn admit(&self, node: NodeId, listen: SocketAddr) -> bool {
        self.shared.unknown_peers.as_ref().is_some_and(|hook| (hook.0)(node, listen))
    }

    async fn serve(&mut self) -> Result<(), InboundError> {
        let Some((from, listen)) = self.hello().await? else { return Ok(()) };
        let mut superseded = self.claim(from, listen)?;
        tracing::info!(addr = %self.addr, peer = %from, "peer connected");
        loop {
            let next = tokio::select! {
                // Checked first, so no more frames are taken from a peer that
                // was superseded or removed.
                biased;
                // Any change is a newer connection: sequence numbers only grow.
                // A dropped sender is the peer leaving the map.
                changed = superseded.changed() => return Err(match changed {
                    Ok(()) => InboundError::Superseded,
                    Err(_) => InboundError::Removed,
                }),
                next = self.reader.next::<M>() => next?,
            };
            let Some((frame, len)) = next else { return Ok(()) };
            add(&self.shared.counters.bytes_in, len as u64);
            let Frame::Msg(msg) = frame else { return Err(InboundError::SecondHello) };
            bump(&self.shared.counters.frames_in);
            if self.shared.inbound.send((from, msg)).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Makes this connection `from`'s newest, if `from` is in the peer map
    /// and no newer connection of `from` said hello first; returns what to
    /// watch for being superseded or removed.
    fn claim(&self, from: NodeId, listen: Option<SocketAddr>) -> Result<watch::Receiver<u64>, InboundError> {
        let newest = self.shared.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(newest) = newest.get(&from) else { return Err(InboundError::UnknownNode(from, listen)) };
        let seq = self.seq;
        // A newer connection whose hello overtook ours wins; we close.
        let ours_is_newest = newest.send_if_modified(|current| {
            let newer = seq > *current;
            if newer {
                *current = seq;
            }
            newer
        });
        if !ours_is_newest {
            return Err(InboundError::Superseded);
        }
        Ok(newest.subscribe())
    }

    /// The peer's id and address from a valid hello, or `None` if it
    /// closed first.
    async fn hello(&mut self) -> Result<Option<(NodeId, Option<SocketAddr>)>, InboundError> {
        let timeout = self.shared.hello_timeout;
        let first = tokio::time::timeout(timeout, self.reader.next::<M>())
            .await
            .map_err(|_| InboundError::HelloTimeout(timeout))??;
        let Some((frame, len)) = first else { return Ok(None) };
        add(&self.shared.counters.bytes_in, len as u64);
        match frame {
            Frame::Hello { wire_version, .. } if wire_version != WIRE_VERSION => {
                Err(InboundError::WireVersion(wire_version))
            }
            Frame::Hello { node, listen, cluster: theirs, .. } => {
                let ours = self.shared.cluster.load(Ordering::Relaxed);
                if theirs != 0 && ours != 0 && theirs != ours {
                    return Err(InboundError::OtherCluster { node, theirs, ours });
                }
                Ok(Some((node, listen)))
            }
            Frame::Msg(_) => Err(InboundError::NotHello),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> InboundShared<u32> {
        InboundShared {
            newest: Mutex::new(BTreeMap::new()),
            inbound: mpsc::channel(1).0,
            counters: Arc::default(),
            frame_bytes_max: 1024,
            hello_timeout: Duration::from_secs(1),
            unknown_told: Mutex::new(BTreeMap::new()),
            unknown_peers: None,
            cluster: Arc::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_outside_the_peer_map_is_told_as_an_error_once_a_minute() {
        let shared = shared();
        assert!(shared.tell_unknown(NodeId(9)));
        assert!(!shared.tell_unknown(NodeId(9)), "its retry two seconds later goes to debug");
        assert!(shared.tell_unknown(NodeId(8)), "another node is told on its own");
        tokio::time::advance(UNKNOWN_NODE_LOG_INTERVAL).await;
        assert!(shared.tell_unknown(NodeId(9)), "a minute later, again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_nodes_remembered_are_bounded_whatever_ids_arrive() {
        let shared = shared();
        for id in 0..10 * UNKNOWN_NODES_REMEMBERED_MAX as u64 {
            assert!(shared.tell_unknown(NodeId(id)));
            assert!(shared.unknown_told.lock().unwrap().len() <= UNKNOWN_NODES_REMEMBERED_MAX);
        }
    }
}
