//! In-process clients of a node's component.
//!
//! In: messages an in-process client (e.g. the station daemon's HTTP
//! handlers) hands to the node, as if sent by a reserved node id.
//! Out: every message the component sends to that id, on a bounded channel
//! instead of the network. When the client does not keep up, messages are
//! dropped and counted, exactly as a full per-peer send queue does: the
//! component is written for lossy links, and must never wait on a client.

use crate::counters::{Counters, bump};
use crate::error::NetError;
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// The node's end of a local client: handed to [`crate::run_with_local`].
#[derive(Debug)]
pub struct LocalEndpoint<M> {
    pub(crate) id: NodeId,
    pub(crate) from_client: mpsc::Receiver<M>,
    pub(crate) to_client: mpsc::Sender<M>,
}

/// The event loop's sending half towards the client.
#[derive(Debug)]
pub(crate) struct LocalOut<M> {
    pub(crate) id: NodeId,
    pub(crate) to_client: mpsc::Sender<M>,
}

/// The client's end: send to the component with `tx`, receive what it
/// sends to `id` on `rx`.
#[derive(Debug)]
pub struct LocalClient<M> {
    /// The node id the component sees as the sender, and replies to.
    pub id: NodeId,
    pub tx: mpsc::Sender<M>,
    pub rx: mpsc::Receiver<M>,
}

/// A local client pair for node id `id`, with channels of `len_max`
/// messages each way (at least 1).
pub fn local_channel<M>(id: NodeId, len_max: usize) -> (LocalEndpoint<M>, LocalClient<M>) {
    let len_max = len_max.clamp(1, crate::LEN_MAX_CEILING);
    let (tx, from_client) = mpsc::channel(len_max);
    let (to_client, rx) = mpsc::channel(len_max);
    (LocalEndpoint { id, from_client, to_client }, LocalClient { id, tx, rx })
}

impl<M> LocalEndpoint<M> {
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The local id must not be the node's own nor a peer's: replies to it
    /// would go to the wrong place.
    pub(crate) fn check(&self, node: NodeId, peers: &BTreeMap<NodeId, SocketAddr>) -> Result<(), NetError> {
        if self.id == node || peers.contains_key(&self.id) {
            return Err(NetError::LocalId { id: self.id });
        }
        Ok(())
    }
}

impl<M> LocalOut<M> {
    /// Hands `msg` to the client without waiting; a full or closed channel
    /// drops it. Returns whether it was queued.
    pub(crate) fn push(&self, msg: M, counters: &Counters) -> bool {
        match self.to_client.try_send(msg) {
            Ok(()) => {
                bump(&counters.local_out);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                bump(&counters.local_drops);
                bump(&counters.send_drops);
                false
            }
        }
    }
}
