//! What a node needs to run.
//!
//! In: the operator's choices: the node's id, where it listens, where its
//! peers listen (and, optionally, a channel of later peer maps), its data
//! directory and the executor's limits.
//! Out: a [`NodeConfig`] that `run` checks once ([`NodeConfig::check`])
//! before it starts anything, so a bad limit is a typed error, not a panic
//! deep inside tokio.

use crate::counters::Counters;
use crate::error::NetError;
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::watch;

/// Smallest accepted `frame_bytes_max`: room for a hello and small messages.
pub const FRAME_BYTES_MAX_FLOOR: u32 = 1024;
/// Largest accepted queue length or connection count, far above any sane
/// setting and far below what would make tokio's channels panic.
pub const LEN_MAX_CEILING: usize = 1 << 24;

/// Bounds on everything the executor buffers, waits for or retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted or sent, in bytes. A peer announcing a
    /// longer frame is disconnected before anything is allocated.
    pub frame_bytes_max: u32,
    /// Messages waiting for one peer's connection; newer ones are dropped
    /// when it is full.
    pub send_queue_len_max: usize,
    /// Messages received from all peers and not yet handled by the
    /// component; readers stop reading (TCP pushes back) when it is full.
    pub inbound_queue_len_max: usize,
    /// Bytes a sender coalesces into one socket write.
    pub write_batch_bytes_max: usize,
    /// First reconnect delay after a failed or lost connection.
    pub reconnect_backoff_ms_min: u64,
    /// The delay doubles per failure up to this.
    pub reconnect_backoff_ms_max: u64,
    /// How long one connection attempt may take.
    pub connect_timeout_ms_max: u64,
    /// How long one socket write may block before the connection is deemed
    /// dead (the peer stopped reading, or its machine is gone).
    pub write_timeout_ms_max: u64,
    /// How long an accepted connection may take to send its hello.
    pub hello_timeout_ms_max: u64,
    /// Accepted connections open at once; more are closed on accept.
    pub inbound_connections_max: usize,
    /// Disk requests the worker takes in one batch (syncs coalesce within it).
    pub disk_batch_len_max: usize,
    /// Shortest interval between two "queue full, dropping" warnings per peer.
    pub drop_warning_interval_ms_min: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes_max: 16 * 1024 * 1024,
            send_queue_len_max: 4096,
            inbound_queue_len_max: 4096,
            write_batch_bytes_max: 1024 * 1024,
            reconnect_backoff_ms_min: 50,
            reconnect_backoff_ms_max: 2_000,
            connect_timeout_ms_max: 1_000,
            write_timeout_ms_max: 10_000,
            hello_timeout_ms_max: 5_000,
            inbound_connections_max: 1024,
            disk_batch_len_max: 256,
            drop_warning_interval_ms_min: 1_000,
        }
    }
}

impl Limits {
    /// Rejects limits that would make a channel of size zero, a backoff that
    /// shrinks, or frames too small for a hello.
    pub fn check(&self) -> Result<(), NetError> {
        let bad = |reason: &str| Err(NetError::Limits { reason: reason.to_owned() });
        if self.frame_bytes_max < FRAME_BYTES_MAX_FLOOR {
            return bad("frame_bytes_max below 1024 bytes");
        }
        if self.send_queue_len_max == 0 || self.inbound_queue_len_max == 0 {
            return bad("queue lengths must be at least 1");
        }
        if self.write_batch_bytes_max == 0 || self.disk_batch_len_max == 0 || self.inbound_connections_max == 0 {
            return bad("batch sizes and inbound_connections_max must be at least 1");
        }
        let lens = [self.send_queue_len_max, self.inbound_queue_len_max, self.disk_batch_len_max];
        if lens.into_iter().chain([self.inbound_connections_max]).any(|len| len > LEN_MAX_CEILING) {
            return bad("queue lengths, disk_batch_len_max and inbound_connections_max must be at most 2^24");
        }
        if self.reconnect_backoff_ms_min == 0 || self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max {
            return bad("need 0 < reconnect_backoff_ms_min <= reconnect_backoff_ms_max");
        }
        if self.connect_timeout_ms_max == 0 || self.write_timeout_ms_max == 0 || self.hello_timeout_ms_max == 0 {
            return bad("timeouts must be at least 1 ms");
        }
        Ok(())
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms_max)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms_max)
    }

    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms_max)
    }
}

/// One node's configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Where to listen, unless `run` is handed an already-bound listener.
    pub listen: SocketAddr,
    /// Every other node's listening address; an entry for `id` is ignored.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The node's flat directory for `Ctx::io`; created if missing.
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Traffic and error counters, shared with the caller (who may keep the
    /// same counters across restarts of the node).
    pub counters: Arc<Counters>,
    /// Later versions of the peer map (same meaning as `peers`: every other
    /// node's listening address; an entry for `id` is ignored). When a new
    /// map is published, the node starts links to new peers, stops the links
    /// of peers no longer present (dropping what was queued for them), and
    /// restarts the link of a peer whose address changed; inbound connections
    /// are accepted from exactly the peers of the current map (a removed peer's
    /// open inbound connection is closed). `None`: the map never changes.
    ///
    /// Publishing maps faster than the node applies them is fine: it applies
    /// the newest. A map naming the in-process client's id (see
    /// `run_with_local`) is logged and ignored. Dropping the sender keeps
    /// the current map.
    pub peer_updates: Option<watch::Receiver<BTreeMap<NodeId, SocketAddr>>>,
    /// Where peers dial this node, told in every hello. `None`: told none.
    pub advertise: Option<SocketAddr>,
    /// The id of the cluster this node belongs to, 0 while the caller does
    /// not know it; told in every hello. A hello naming another cluster,
    /// when both are known, is refused: a station configured with the
    /// wrong addresses must not reach into another cluster's Raft.
    pub cluster: Arc<AtomicU64>,
    /// Told of each hello refused because its node is not in the peer map,
    /// with the address that node says it can be dialled at; answers
    /// whether the caller puts it in the next map (then the refusal is not
    /// logged as an error). A member that was down while the cluster
    /// changed may know none of the members that now want to reach it.
    pub unknown_peers: Option<UnknownPeers>,
}

/// See [`NodeConfig::unknown_peers`]. Called on a connection's task: it must
/// not block.
#[derive(Clone)]
pub struct UnknownPeers(pub Arc<dyn Fn(NodeId, SocketAddr) -> bool + Send + Sync>);

impl std::fmt::Debug for UnknownPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnknownPeers(..)")
    }
}

impl NodeConfig {
    /// A configuration with default limits and fresh counters.
    pub fn new(id: NodeId, listen: SocketAddr, peers: BTreeMap<NodeId, SocketAddr>, data_dir: PathBuf) -> Self {
        let (limits, counters) = (Limits::default(), Arc::default());
        NodeConfig {
            id,
            listen,
            peers,
            data_dir,
            limits,
            counters,
            peer_updates: None,
            advertise: None,
            cluster: Arc::default(),
            unknown_peers: None,
        }
    }

    /// The peers this node talks to over TCP (itself excluded).
    pub fn remote_peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.peers.iter().filter(|(id, _)| **id != self.id).map(|(id, addr)| (*id, *addr)).collect()
    }

    pub fn check(&self) -> Result<(), NetError> {
        self.limits.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_broken_limits_fail() {
        assert!(Limits::default().check().is_ok());
        let broken = [
            Limits { send_queue_len_max: 0, ..Limits::default() },
            Limits { frame_bytes_max: 10, ..Limits::default() },
            Limits { reconnect_backoff_ms_min: 3_000, ..Limits::default() },
            Limits { hello_timeout_ms_max: 0, ..Limits::default() },
            Limits { inbound_queue_len_max: usize::MAX, ..Limits::default() },
        ];
        for limits in broken {
            assert!(matches!(limits.check(), Err(NetError::Limits { .. })), "{limits:?} accepted");
        }
    }

    #[test]
    fn self_is_not_a_remote_peer() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let peers = BTreeMap::from([(NodeId(1), addr), (NodeId(2), addr)]);
        let config = NodeConfig::new(NodeId(1), addr, peers, PathBuf::from("/nonexistent"));
        assert_eq!(config.remote_peers().keys().copied().collect::<Vec<_>>(), vec![NodeId(2)]);
    }
}
