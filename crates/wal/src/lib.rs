//! Haven's write-ahead log and snapshot files, over the runtime's disk
//! interface, so the simulator can crash, tear, fill and corrupt them.
//!
//! In: raft's durable writes — log entries (index, term, opaque payload),
//! its opaque hard state, suffix truncations, snapshots — and compaction
//! requests; the disk completions its parent routes back.
//! Out: disk requests; [`WalEvent::Durable`] once a group commit covering a
//! request is synced (never before); on open, everything recovered
//! ([`Recovered`]), a torn last write cut off and reported, or a fatal
//! [`WalError::Corrupt`] naming the file and offset of any other defect.
//!
//! Files in the node's directory (other names are left alone):
//! - `wal-<seq>-<index>.log`: segments of records (header, entry, hard state,
//!   truncation marker), each framed by `haven_runtime::record`, then zeros
//!   written ahead of the next records (`WalConfig::zero_fill_bytes`);
//! - `snapshot`, and `snapshot.tmp` while a save is in progress.
//!
//! Usage from a parent component: own a [`Wal`]; call its methods with
//! `ctx.sub(&mut outputs)` (the parent's message, timer and I/O enums wrap
//! [`NoMsg`], [`WalTimer`] and [`WalIo`]); route completions and timers
//! tagged with those back to `Wal::on_io` / `Wal::on_timer`; act on the
//! [`WalEvent`]s collected in `outputs`.

mod compaction;
mod config;
mod entry;
mod error;
mod event;
mod file_read;
mod format;
mod open;
mod replay;
mod running;
mod segment_name;
mod snapshot_file;
mod snapshot_save;
mod tags;
mod terms;
mod wal;
mod writer;

pub use config::{ConfigError, WalConfig};
pub use entry::{Entry, Snapshot, SnapshotMeta};
pub use error::{DiskOp, WalError};
pub use event::{Recovered, Ticket, TornTail, WalEvent};
pub use segment_name::SegmentName;
pub use snapshot_file::{SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, file_bytes as snapshot_file_bytes};
pub use tags::{NoMsg, WalIo, WalTimer};
pub use wal::Wal;
