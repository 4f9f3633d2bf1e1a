//! Who the node talks to, and the tasks that do the talking.
//!
//! In: the node's configuration (id, limits, counters, initial peer map),
//! its listener, the inbound channel, and later versions of the peer map
//! ([`Network::set_peers`]).
//! Out: the acceptor task, which admits connections from exactly the peers
//! of the current map; one sender task and [`SendQueue`] per current peer;
//! one info log line and one counter bump per peer added, removed or moved.
//!
//! A removed peer's sender task is aborted wherever it is (connected,
//! connecting, or waiting to reconnect), so a member that left is never
//! dialled again; what was queued for it is dropped, as a broken link
//! would lose it. Its inbound connection closes because its entry in the
//! accept set, whose watch that connection follows, is dropped.

use crate::acceptor::Acceptor;
use crate::config::{Limits, NodeConfig};
use crate::counters::{Counters, bump};
use crate::error::NetError;
use crate::inbound::InboundShared;
use crate::link::{Dialler, Link};
use crate::send_queue::SendQueue;
use haven_runtime::{Message, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

#[derive(Debug)]
pub(crate) struct Network<M> {
    me: NodeId,
    /// What each hello tells.
    dialler: Dialler,
    /// The in-process client's id, which no peer map may name.
    reserved: Option<NodeId>,
    limits: Limits,
    counters: Arc<Counters>,
    links: BTreeMap<NodeId, PeerLink<M>>,
    shared: Arc<InboundShared<M>>,
    /// The acceptor and every sender task, current or aborted.
    tasks: JoinSet<()>,
}

/// One current peer: where it listens, its queue, its sender task.
#[derive(Debug)]
struct PeerLink<M> {
    addr: SocketAddr,
    queue: SendQueue<M>,
    task: AbortHandle,
}

impl<M> Drop for PeerLink<M> {
    /// Dropping the queue alone would only end a connected sender; one that
    /// is connecting or backing off must stop too.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<M: Message> Network<M> {
    /// Starts the acceptor and the links to `config`'s peers. `reserved` is
    /// the in-process client's id, if any (already checked against
    /// `config.peers`).
    pub(crate) fn start(
        config: &NodeConfig,
        reserved: Option<NodeId>,
        listener: TcpListener,
        inbound: mpsc::Sender<(NodeId, M)>,
    ) -> Self {
        let limits = config.limits.clone();
        let shared = Arc::new(InboundShared {
            newest: Mutex::new(BTreeMap::new()),
            inbound,
            counters: config.counters.clone(),
            frame_bytes_max: limits.frame_bytes_max,
            hello_timeout: limits.hello_timeout(),
            unknown_told: Mutex::new(BTreeMap::new()),
            unknown_peers: config.unknown_peers.clone(),
            cluster: config.cluster.clone(),
        });
        let mut tasks = JoinSet::new();
        let acceptor = Acceptor::new(listener, limits.inbound_connections_max, shared.clone());
        tasks.spawn(acceptor.run().in_current_span());
        let counters = config.counters.clone();
        let (me, links) = (config.id, BTreeMap::new());
        let dialler = Dialler { node: me, listen: config.advertise, cluster: config.cluster.clone() };
        let mut network = Network { me, dialler, reserved, limits, counters, links, shared, tasks };
        for (peer, addr) in config.remote_peers() {
            network.add(peer, addr);
        }
        network
    }

    /// The queue to `peer`, if it is in the current map.
    pub(crate) fn queue(&mut self, peer: NodeId) -> Option<&mut SendQueue<M>> {
        self.links.get_mut(&peer).map(|link| &mut link.queue)
    }

    /// Makes `peers` (the node's own entry ignored) the current map. Refused
    /// as a whole if it names the in-process client's id.
    pub(crate) fn set_peers(&mut self, peers: &BTreeMap<NodeId, SocketAddr>) -> Result<(), NetError> {
        if let Some(id) = self.reserved.filter(|id| peers.contains_key(id)) {
            return Err(NetError::LocalId { id });
        }
        let gone: Vec<NodeId> = self.links.keys().filter(|id| !peers.contains_key(id)).copied().collect();
        for peer in gone {
            self.remove(peer);
        }
        let me = self.me;
        for (&peer, &addr) in peers.iter().filter(|(id, _)| **id != me) {
            match self.links.get(&peer).map(|link| link.addr) {
                None => {
                    tracing::info!(peer = %peer, addr = %addr, "peer added");
                    bump(&self.counters.peers_added);
                    self.add(peer, addr);
                }
                Some(old) if old != addr => {
                    tracing::info!(peer = %peer, addr = %addr, old_addr = %old, "peer address changed, relinking");
                    bump(&self.counters.peer_addr_changes);
                    // Replacing the entry aborts the old sender task.
                    let link = self.spawn_link(peer, addr);
                    self.links.insert(peer, link);
                }
                Some(_) => {}
            }
        }
        // Free what the aborted tasks left behind, so updates cannot pile them up.
        while self.tasks.try_join_next().is_some() {}
        Ok(())
    }

    /// Closes the listener and every connection, and waits for the tasks.
    pub(crate) async fn stop(mut self) {
        self.links.clear();
        self.tasks.shutdown().await;
    }

    fn add(&mut self, peer: NodeId, addr: SocketAddr) {
        self.lock_newest().insert(peer, watch::Sender::new(0));
        let link = self.spawn_link(peer, addr);
        self.links.insert(peer, link);
    }

    fn remove(&mut self, peer: NodeId) {
        let Some(link) = self.links.remove(&peer) else { return };
        tracing::info!(peer = %peer, addr = %link.addr, "peer removed");
        bump(&self.counters.peers_removed);
        // Dropping the watch sender closes the peer's inbound connection.
        self.lock_newest().remove(&peer);
    }

    fn spawn_link(&mut self, peer: NodeId, addr: SocketAddr) -> PeerLink<M> {
        let limits = &self.limits;
        let warning_interval = Duration::from_millis(limits.drop_warning_interval_ms_min);
        let (queue, rx) = SendQueue::new(peer, limits.send_queue_len_max, warning_interval, self.counters.clone());
        let link = Link::new(self.dialler.clone(), addr, rx, limits.clone(), self.counters.clone());
        let task = self.tasks.spawn(link.run().instrument(tracing::error_span!("link", peer = %peer)));
        PeerLink { addr, queue, task }
    }

    fn lock_newest(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, watch::Sender<u64>>> {
        self.shared.newest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    async fn network(peers: &BTreeMap<NodeId, SocketAddr>, reserved: Option<NodeId>) -> Network<u32> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = NodeConfig::new(NodeId(1), listener.local_addr().unwrap(), peers.clone(), PathBuf::from("/x"));
        let (inbound, _) = mpsc::channel(1);
        Network::start(&config, reserved, listener, inbound)
    }

    fn state(network: &Network<u32>) -> (Vec<(NodeId, SocketAddr)>, Vec<NodeId>) {
        let links = network.links.iter().map(|(id, link)| (*id, link.addr)).collect();
        (links, network.lock_newest().keys().copied().collect())
    }

    #[tokio::test]
    async fn updates_add_remove_and_move_peers_and_skip_the_node_itself() {
        let initial = BTreeMap::from([(NodeId(1), addr(1)), (NodeId(2), addr(2)), (NodeId(3), addr(3))]);
        let mut network = network(&initial, Some(NodeId(9))).await;
        assert_eq!(state(&network), (vec![(NodeId(2), addr(2)), (NodeId(3), addr(3))], vec![NodeId(2), NodeId(3)]));

        let update = BTreeMap::from([(NodeId(1), addr(1)), (NodeId(2), addr(22)), (NodeId(4), addr(4))]);
        network.set_peers(&update).unwrap();
        assert_eq!(state(&network), (vec![(NodeId(2), addr(22)), (NodeId(4), addr(4))], vec![NodeId(2), NodeId(4)]));
        let counters = network.counters.snapshot();
        assert_eq!((counters.peers_added, counters.peers_removed, counters.peer_addr_changes), (1, 1, 1));
        assert!(network.queue(NodeId(3)).is_none() && network.queue(NodeId(4)).is_some());

        // Naming the in-process client's id refuses the whole update.
        let bad = BTreeMap::from([(NodeId(9), addr(9))]);
        assert!(matches!(network.set_peers(&bad), Err(NetError::LocalId { id: NodeId(9) })));
        assert_eq!(state(&network).1, vec![NodeId(2), NodeId(4)]);
        network.stop().await;
    }

    #[tokio::test]
    async fn removed_links_end_even_while_backing_off() {
        // Nothing listens on the peers' ports: their links connect, fail and back off.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let mut network = network(&BTreeMap::from([(NodeId(2), dead), (NodeId(3), dead)]), None).await;
        assert_eq!(network.tasks.len(), 3, "the acceptor and two links");
        let counters = network.counters.clone();
        let failed = async {
            while counters.snapshot().connect_errors < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), failed).await.expect("both links fail to connect");
        network.set_peers(&BTreeMap::new()).unwrap();
        let reaped = tokio::time::timeout(Duration::from_secs(5), async {
            while network.tasks.len() > 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                while network.tasks.try_join_next().is_some() {}
            }
        });
        assert!(reaped.await.is_ok(), "the removed links' tasks did not end");
        network.stop().await;
    }
}
