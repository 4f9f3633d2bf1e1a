//! Traffic and error counters of one node.
//!
//! In: increments from the event loop, the links and the disk worker.
//! Out: a [`CountersSnapshot`] the caller reads (e.g. for Prometheus). The
//! counters only grow; relaxed atomics suffice because nobody derives an
//! ordering between two of them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared between a node's tasks and its caller.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) messages_local: AtomicU64,
    pub(crate) send_drops: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_errors: AtomicU64,
    pub(crate) accepts: AtomicU64,
    pub(crate) inbound_errors: AtomicU64,
    pub(crate) disk_ops: AtomicU64,
    pub(crate) disk_syncs: AtomicU64,
    pub(crate) outputs: AtomicU64,
    pub(crate) local_in: AtomicU64,
    pub(crate) local_out: AtomicU64,
    pub(crate) local_drops: AtomicU64,
}

/// A reading of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Message frames received from peers (hellos excluded).
    pub frames_in: u64,
    /// Message frames written to peer sockets (hellos excluded).
    pub frames_out: u64,
    /// Bytes of all frames received, headers included.
    pub bytes_in: u64,
    /// Bytes of all frames written, headers included.
    pub bytes_out: u64,
    /// Messages a node sent to itself, delivered without a socket.
    pub messages_local: u64,
    /// Messages dropped: a full queue, an unknown destination, or a message
    /// above `frame_bytes_max`.
    pub send_drops: u64,
    /// Outbound connections established (hello written).
    pub connects: u64,
    /// Outbound connections that failed to open or broke.
    pub connect_errors: u64,
    /// Inbound connections accepted (hello not yet checked).
    pub accepts: u64,
    /// Inbound connections closed for a bad frame, a bad hello, a timeout,
    /// an i/o error or too many connections.
    pub inbound_errors: u64,
    /// Disk requests executed.
    pub disk_ops: u64,
    /// Data and directory fsyncs issued (several `Sync` requests may share one).
    pub disk_syncs: u64,
    /// `Effect::Output`s handed to the caller.
    pub outputs: u64,
    /// Messages from the in-process client (see `run_with_local`).
    pub local_in: u64,
    /// Messages handed to the in-process client.
    pub local_out: u64,
    /// Messages to the in-process client dropped because it did not keep
    /// up or was gone (also counted in `send_drops`).
    pub local_drops: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            frames_in: get(&self.frames_in),
            frames_out: get(&self.frames_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            messages_local: get(&self.messages_local),
            send_drops: get(&self.send_drops),
            connects: get(&self.connects),
            connect_errors: get(&self.connect_errors),
            accepts: get(&self.accepts),
            inbound_errors: get(&self.inbound_errors),
            disk_ops: get(&self.disk_ops),
            disk_syncs: get(&self.disk_syncs),
            outputs: get(&self.outputs),
            local_in: get(&self.local_in),
            local_out: get(&self.local_out),
            local_drops: get(&self.local_drops),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    add(counter, 1);
}
