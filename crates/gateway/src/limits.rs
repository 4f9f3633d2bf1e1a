//! The gateway's bounds.
//!
//! In: operator settings (defaults follow etcd). Out: the sizes and counts
//! the router enforces on bodies, streams and watches.

use std::time::Duration;

/// etcd's `--max-request-bytes` default: 1.5 MiB.
pub const REQUEST_BYTES_MAX_DEFAULT: u64 = 1536 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayLimits {
    /// The largest request etcd accepts, counted in decoded key and value
    /// bytes (the store enforces it exactly). A JSON body carries those
    /// bytes in base64 (4/3 larger) plus field names, so the body limit is
    /// [`GatewayLimits::body_bytes_max`].
    pub request_bytes_max: u64,
    /// Watches one `/v3/watch` connection may hold open at once.
    pub watches_per_connection_len_max: usize,
    /// Events in one streamed watch response line; more are split.
    pub events_per_line_len_max: usize,
    /// Response lines queued per streaming connection before the producer
    /// waits for the client to read (backpressure, never dropping).
    pub stream_queue_len_max: usize,
    /// How long a watch with `progress_notify` may stay silent before it
    /// gets an empty response carrying the current revision (etcd: 10 min).
    pub progress_interval: Duration,
}

impl Default for GatewayLimits {
    fn default() -> GatewayLimits {
        GatewayLimits {
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            watches_per_connection_len_max: 1_000,
            events_per_line_len_max: 1_000,
            stream_queue_len_max: 64,
            progress_interval: Duration::from_secs(600),
        }
    }
}

/// Room for field names, quotes and whitespace around the base64 payload;
/// etcd's gRPC layer likewise allows 512 KiB above the request limit.
const BODY_FRAMING_BYTES_MAX: u64 = 512 * 1024;

impl GatewayLimits {
    /// The largest body (or streamed message) read at all: a request of
    /// `request_bytes_max` decoded bytes, in base64, with framing.
    pub fn body_bytes_max(&self) -> u64 {
        self.request_bytes_max.saturating_mul(4).div_ceil(3).saturating_add(BODY_FRAMING_BYTES_MAX)
    }
}
