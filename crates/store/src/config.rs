//! The store's limits.
//!
//! In: operator settings (defaults are etcd's). Out: the bounds every apply
//! enforces. Every replica must use the same values, because they change
//! the answers (and so the replicated state).

use serde::{Deserialize, Serialize};

/// etcd's `--max-request-bytes` default: 1.5 MiB.
pub const REQUEST_BYTES_MAX_DEFAULT: u64 = 1536 * 1024;
/// etcd's `MaxLeaseTTL`.
pub const LEASE_TTL_SECONDS_MAX: i64 = 9_000_000_000;
/// What etcd charges the quota for one stored key version beyond its bytes.
pub const ENTRY_OVERHEAD_BYTES: u64 = 256;
/// What etcd charges the quota for one lease.
pub const LEASE_OVERHEAD_BYTES: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    pub key_bytes_max: u64,
    pub value_bytes_max: u64,
    /// Bytes of keys, values and range ends in one request, nested ops included.
    pub request_bytes_max: u64,
    /// etcd's `--max-txn-ops` (per list, with nested txns sharing the budget as in etcd).
    pub txn_ops_len_max: u64,
    /// Ops in one request counting every nesting level; etcd has no such
    /// limit, but its budget rule alone lets nesting multiply the count.
    pub txn_ops_total_len_max: u64,
    /// etcd's `--quota-backend-bytes` default (2 GiB), charged per stored
    /// version and lease as etcd's quota does.
    pub quota_bytes_max: u64,
    /// Shortest lease; etcd derives 2 s from its default election timeout.
    pub lease_ttl_seconds_min: i64,
    /// Shortest lease granted in milliseconds (`Request::LeaseGrantMs`).
    pub lease_ttl_ms_min: u64,
    /// Key-values in one range answer; beyond it the answer is cut with
    /// `more = true` (etcd would try to send everything).
    pub range_kvs_len_max: u64,
    /// Bytes of keys and values in one range answer, cut likewise (at least
    /// one key-value is always returned).
    pub range_response_bytes_max: u64,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            key_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            value_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            txn_ops_len_max: 128,
            txn_ops_total_len_max: 4096,
            quota_bytes_max: 2 << 30,
            lease_ttl_seconds_min: 2,
            lease_ttl_ms_min: 2_000,
            range_kvs_len_max: 100_000,
            range_response_bytes_max: 64 << 20,
        }
    }
}
