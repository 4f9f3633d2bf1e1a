//! Haven's replicated state machine: a key-value store with etcd v3's data
//! model, so the server can speak etcd's API on top of raft.
//!
//! In: [`Request`]s in raft-log order, applied by [`Store::apply`]; reads,
//! watch scans and snapshots between applies; on the leader, lease
//! keep-alives and the clock, given to the [`Lessor`].
//! Out: etcd's [`Response`] or [`StoreError`] for every request; watch
//! [`Event`]s in revision order with no gaps or duplicates
//! ([`WatchHub`]); snapshots ([`Store::snapshot`], [`Store::restore`]); and,
//! from the lessor, the leases whose time ran out, which the leader then
//! revokes through the log.
//!
//! - MVCC: the revision starts at 1 and a write transaction that changes
//!   anything raises it by one; every key keeps create_revision,
//!   mod_revision and version (reset by a delete); reads at any revision
//!   from the compaction point on.
//! - Txn: compares on value, version, create/mod revision and lease; nested
//!   txns; etcd's op budget and duplicate-key rule.
//! - Leases: the store only applies grants and revokes; expiry is the
//!   leader's [`Lessor`]'s decision, proposed as a revoke.

mod applier;
mod check;
mod compare;
pub mod config;
mod error;
mod event;
mod key_chunk;
mod key_history;
mod key_map;
mod key_range;
mod key_value;
mod keyspace;
mod lease_id;
mod lease_table;
mod lessor;
mod range_read;
mod request;
mod response;
mod revision;
mod snapshot;
mod snapshot_writer;
mod store;
mod txn_path;
mod watch;

pub use config::StoreConfig;
pub use error::{Compacted, StoreError};
pub use event::{Event, EventKind};
pub use key_range::{KeyRange, prefix_end};
pub use key_value::KeyValue;
pub use keyspace::{EventScan, ScanLimits};
pub use lease_id::{LeaseId, NO_LEASE};
pub use lessor::{Lessor, LessorConfig, LessorError, whole_seconds};
pub use request::*;
pub use response::*;
pub use revision::Revision;
pub use snapshot::{SNAPSHOT_VERSION, SnapshotError};
pub use snapshot_writer::StoreSnapshotWriter;
pub use store::Store;
pub use watch::{WatchConfig, WatchError, WatchHub, WatchId, WatchRequest, WatchUpdate};
