//! The daemon's Prometheus metrics, in a registry it owns (no global
//! recorder, so several stations can run in one process).
//!
//! In: updates from the replica's outputs (`progress.rs`), from the request
//! paths (proposals, latencies, watchers) and, at scrape time, the
//! executor's counters. Out: Prometheus text for `GET /metrics`.

use crate::capped_listener::ConnectionCounts;
use haven_net::{Counters, CountersSnapshot, LATENCY_BUCKETS_US, Latencies};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub term: Gauge,
    pub commit: Gauge,
    pub applied: Gauge,
    pub is_leader: Gauge,
    pub has_leader: Gauge,
    /// 1 once this member knows it was removed from the cluster.
    pub removed: Gauge,
    pub leader_changes: Counter,
    /// Writes this member took from its clients (forwarded ones included).
    pub proposals: Counter,
    /// Of those, the ones that failed (timeout, no leader, refused).
    pub proposals_failed: Counter,
    /// Client requests from arrival to answer, in seconds.
    pub request_seconds: Histogram,
    pub watchers: Gauge,
    /// The store's revision, the quota bytes it uses (etcd's db size in
    /// use) and its leases, as this member applied them.
    pub revision: Gauge,
    pub store_bytes: Gauge,
    pub leases: Gauge,
    /// Runs of the fence command started, exited 0, and failed or timed out.
    pub fences_started: Counter,
    pub fences_succeeded: Counter,
    pub fences_failed: Counter,
    /// The client listener's open connections and waits at its cap.
    pub client_connections: ConnectionCounts,
    net: NetMetrics,
    net_counters: Arc<Counters>,
    /// The executor's counters at the last scrape, to turn them into increments.
    net_seen: Mutex<CountersSnapshot>,
}

#[derive(Debug, Default)]
struct NetMetrics {
    send_drops: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    local_drops: Counter,
    slow_turns: Counter,
}

impl Metrics {
    pub fn new(net_counters: Arc<Counters>) -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("haven"),
            term: Gauge::default(),
            commit: Gauge::default(),
            applied: Gauge::default(),
            is_leader: Gauge::default(),
            has_leader: Gauge::default(),
            removed: Gauge::default(),
            leader_changes: Counter::default(),
            proposals: Counter::default(),
            proposals_failed: Counter::default(),
            // 100 µs to ~6.5 s.
            request_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
            watchers: Gauge::default(),
            revision: Gauge::default(),
            store_bytes: Gauge::default(),
            leases: Gauge::default(),
            fences_started: Counter::default(),
            fences_succeeded: Counter::default(),
            fences_failed: Counter::default(),
            client_connections: ConnectionCounts::default(),
            net: NetMetrics::default(),
            net_counters,
            net_seen: Mutex::new(CountersSnapshot::default()),
        };
        let mut registry = std::mem::take(&mut m.registry);
        registry.register("raft_term", "The Raft term this member knows", m.term.clone());
        registry.register("commit_index", "Raft's commit index on this member", m.commit.clone());
        registry.register("applied_index", "The last log index this member applied", m.applied.clone());
        registry.register("is_leader", "1 when this member leads", m.is_leader.clone());
        registry.register("has_leader", "1 when this member knows a leader", m.has_leader.clone());
        let removed = "1 once this member knows it was removed from the cluster: stop it and delete its data";
        registry.register("removed", removed, m.removed.clone());
        registry.register("leader_changes", "Times this member saw a new leader", m.leader_changes.clone());
        registry.register("proposals", "Write requests taken from clients", m.proposals.clone());
        registry.register("proposals_failed", "Write requests that failed", m.proposals_failed.clone());
        registry.register("request_duration_seconds", "Client request latency", m.request_seconds.clone());
        registry.register("watchers", "Watches open through this member", m.watchers.clone());
        registry.register("store_revision", "The store's revision on this member", m.revision.clone());
        let bytes_about = "Bytes the store uses against its quota: retained key versions and leases";
        registry.register("store_bytes", bytes_about, m.store_bytes.clone());
        registry.register("leases", "Leases granted and not yet revoked or expired", m.leases.clone());
        registry.register("fences_started", "Runs of the fence command started", m.fences_started.clone());
        registry.register("fences_succeeded", "Runs of the fence command that exited 0", m.fences_succeeded.clone());
        registry.register(
            "fences_failed",
            "Runs of the fence command that failed or timed out",
            m.fences_failed.clone(),
        );
        let open = m.client_connections.open.clone();
        registry.register("client_connections", "Client connections open on this member", open);
        let waits = "Times a new client connection waited because --client-connections-max were open";
        registry.register("client_connection_waits", waits, m.client_connections.waits.clone());
        let fsyncs = NetLatencies { counters: m.net_counters.clone(), pick: |c| c.disk_syncs };
        registry.register("disk_fsync_duration_seconds", "fsync latency of the data directory", fsyncs);
        let turns = NetLatencies { counters: m.net_counters.clone(), pick: |c| c.turns };
        let about = "Event-loop turns of the replica (one input and its effects; nothing else moves meanwhile)";
        registry.register("event_loop_turn_duration_seconds", about, turns);
        registry.register("peer_send_drops", "Messages dropped for full queues", m.net.send_drops.clone());
        registry.register("peer_received_bytes", "Bytes received from peers", m.net.bytes_in.clone());
        registry.register("peer_sent_bytes", "Bytes sent to peers", m.net.bytes_out.clone());
        registry.register("local_drops", "Replies dropped for a slow dispatcher", m.net.local_drops.clone());
        let slow = "Replica turns over 50 ms (heartbeats wait behind them)";
        registry.register("slow_turns", slow, m.net.slow_turns.clone());
        m.registry = registry;
        m
    }

    /// The Prometheus text of every metric.
    pub fn encode(&self) -> String {
        self.catch_up_net();
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    fn catch_up_net(&self) {
        let now = self.net_counters.snapshot();
        let mut seen = self.net_seen.lock().expect("never poisoned: no panics while held");
        let net = &self.net;
        net.send_drops.inc_by(now.send_drops.saturating_sub(seen.send_drops));
        net.bytes_in.inc_by(now.bytes_in.saturating_sub(seen.bytes_in));
        net.bytes_out.inc_by(now.bytes_out.saturating_sub(seen.bytes_out));
        net.local_drops.inc_by(now.local_drops.saturating_sub(seen.local_drops));
        net.slow_turns.inc_by(now.slow_turns.saturating_sub(seen.slow_turns));
        *seen = now;
    }
}

/// One of the executor's latency histograms, read at scrape time.
#[derive(Debug)]
struct NetLatencies {
    counters: Arc<Counters>,
    pick: fn(&CountersSnapshot) -> Latencies,
}

impl TypedMetric for NetLatencies {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for NetLatencies {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let now = (self.pick)(&self.counters.snapshot());
        let bounds = LATENCY_BUCKETS_US.iter().map(|&us| us as f64 / 1e6).chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(now.buckets).collect();
        encoder.encode_histogram::<NoLabelSet>(now.nanos as f64 / 1e9, now.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
