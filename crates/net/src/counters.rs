//! Traffic and error counters of one node.
//!
//! In: increments from the event loop, the links and the disk worker.
//! Out: a [`CountersSnapshot`] the caller reads (e.g. for Prometheus). The
//! counters only grow; relaxed atomics suffice because nobody derives an
//! ordering between two of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets (fsyncs, event-loop turns), in
/// microseconds; a last, unbounded bucket follows.
pub const LATENCY_BUCKETS_US: [u64; 12] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000];
/// Buckets of [`Latencies::buckets`]: the bounded ones and the last.
pub const LATENCY_BUCKETS_LEN: usize = LATENCY_BUCKETS_US.len() + 1;

/// A live latency histogram.
#[derive(Debug, Default)]
pub(crate) struct LiveLatencies {
    count: AtomicU64,
    nanos: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_LEN],
}

/// A reading of a latency histogram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latencies {
    /// Events timed.
    pub count: u64,
    /// Their total time, in nanoseconds.
    pub nanos: u64,
    /// How many took at most `LATENCY_BUCKETS_US[i]` (and more than the
    /// bound before); the last bucket holds the rest.
    pub buckets: [u64; LATENCY_BUCKETS_LEN],
}

impl LiveLatencies {
    pub(crate) fn record(&self, took: Duration) {
        bump(&self.count);
        add(&self.nanos, u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(LATENCY_BUCKETS_US.len());
        bump(&self.buckets[bucket]);
    }

    fn snapshot(&self) -> Latencies {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Latencies {
            count: get(&self.count),
            nanos: get(&self.nanos),
            buckets: std::array::from_fn(|i| get(&self.buckets[i])),
        }
    }
}

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
    pub(crate) outputs: AtomicU64,
    pub(crate) local_in: AtomicU64,
    pub(crate) local_out: AtomicU64,
    pub(crate) local_drops: AtomicU64,
    pub(crate) peers_added: AtomicU64,
    pub(crate) peers_removed: AtomicU64,
    pub(crate) peer_addr_changes: AtomicU64,
    pub(crate) slow_turns: AtomicU64,
    pub(crate) disk_syncs: LiveLatencies,
    pub(crate) turns: LiveLatencies,
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
    /// `Effect::Output`s handed to the caller.
    pub outputs: u64,
    /// Messages from the in-process client (see `run_with_local`).
    pub local_in: u64,
    /// Messages handed to the in-process client.
    pub local_out: u64,
    /// Messages to the in-process client dropped because it did not keep
    /// up or was gone (also counted in `send_drops`).
    pub local_drops: u64,
    /// Peers a peer-map update added (the initial map not counted).
    pub peers_added: u64,
    /// Peers a peer-map update removed: their link stopped, their queued
    /// messages dropped, their inbound connection closed.
    pub peers_removed: u64,
    /// Peers whose address a peer-map update changed (their link restarted).
    pub peer_addr_changes: u64,
    /// Turns of the event loop (one input handled by the component, its
    /// effects carried out) that took longer than `SLOW_TURN`: while one
    /// runs, no heartbeat is sent or answered.
    pub slow_turns: u64,
    /// Data and directory fsyncs issued (several `Sync` requests may share
    /// one) and how long they took.
    pub disk_syncs: Latencies,
    /// Every turn of the event loop and how long it took: while one runs,
    /// nothing else in the node moves.
    pub turns: Latencies,
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
            outputs: get(&self.outputs),
            local_in: get(&self.local_in),
            local_out: get(&self.local_out),
            local_drops: get(&self.local_drops),
            peers_added: get(&self.peers_added),
            peers_removed: get(&self.peers_removed),
            peer_addr_changes: get(&self.peer_addr_changes),
            slow_turns: get(&self.slow_turns),
            disk_syncs: self.disk_syncs.snapshot(),
            turns: self.turns.snapshot(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fsync_lands_in_the_first_bucket_whose_bound_covers_it() {
        let counters = Counters::default();
        counters.disk_syncs.record(Duration::from_micros(50));
        counters.disk_syncs.record(Duration::from_micros(51));
        counters.disk_syncs.record(Duration::from_secs(2));
        let syncs = counters.snapshot().disk_syncs;
        assert_eq!(syncs.count, 3);
        assert_eq!(syncs.buckets[0], 1, "50 us is within the 50 us bound");
        assert_eq!(syncs.buckets[1], 1, "51 us is in the 100 us bucket");
        assert_eq!(syncs.buckets[LATENCY_BUCKETS_LEN - 1], 1, "2 s is beyond every bound");
        assert_eq!(syncs.nanos, 2_000_101_000);
    }
}
