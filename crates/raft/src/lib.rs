//! Raft consensus as a pure, deterministic state machine.
//!
//! In: clock readings, messages from peers, client commands, and the
//! caller's reports that what it was asked to persist is durable and what
//! it was handed to apply is applied.
//! Out: [`Ready`] batches — one persist request (hard state and entries
//! for the WAL), messages that may be sent now, committed entries to
//! apply, confirmed and failed reads, snapshot requests and snapshots to
//! install — and the deadline of the next `tick`.
//!
//! The core does no I/O and owns no clock: it follows etcd's RawNode design
//! (a step function plus a "ready" batch) on Haven's component model.
//!
//! **Time** is an explicit [`haven_runtime::Instant`] passed to every input,
//! not logical ticks: the runtime's timers are deadlines, so the glue sets
//! one timer at [`Raft::next_deadline`]; a node that was paused sees the
//! real time that passed (a tick counter would silently lose it, which is
//! unsafe for leases); and transcript tests state times directly.
//! Election timeouts are drawn from a caller-seeded `ChaCha8Rng`.
//!
//! **Durability order** is enforced inside the core, not left to the
//! caller: a message that depends on a term, vote or entries not yet
//! durable (a granted vote, an append acknowledgement, any reply carrying
//! a new term) is held back and appears in a `Ready` only after the caller
//! reported the persist request it depends on with [`Raft::on_persisted`].
//! The leader's replication is the one exception (thesis §10.2.1); it
//! counts itself toward commit only through an acknowledgement that waits
//! for its own persist like any other.
//!
//! **Beyond the paper's core** (each in its own module): linearizable
//! reads by ReadIndex ([`Raft::read_index`], thesis §6.4) and, optionally,
//! from a leader lease under a stated clock-drift bound
//! ([`Raft::lease_read`], §6.4.1); leadership transfer
//! ([`Raft::transfer_leader`], §3.10); log compaction and chunked
//! InstallSnapshot ([`Raft::compact`], [`Raft::provide_snapshot`],
//! [`Raft::on_snapshot_installed`], §7); learners and joint consensus
//! ([`Raft::propose_membership`], ch. 4); and a follower committing up to
//! an index its leader reported outside Raft's messages
//! ([`Raft::learn_commit`], bounded by log matching, §5.3).
//!
//! **The state machine** is pluggable ([`StateMachine`]): commands are
//! opaque bytes to consensus; [`Raft::apply_to`] and
//! [`Raft::snapshot_machine`] drive any implementation.

mod conf_change;
mod config;
mod election;
mod entry;
mod error;
mod follower;
mod gate;
mod leadership;
mod lease;
mod log;
mod membership;
mod membership_log;
mod message;
#[cfg(feature = "planted-bugs")]
pub mod planted;
mod progress;
mod raft;
mod read_index;
mod reads;
mod ready;
mod replication;
mod snapshot_inbox;
mod snapshot_install;
mod snapshots;
mod state;
mod state_machine;
mod transfer;
mod votes;

pub use conf_change::ConfChangeError;
pub use config::{Config, ConfigError};
pub use entry::{ENTRY_OVERHEAD_BYTES, Entry, EntryKind, LogPosition, PayloadError};
pub use error::{
    CompactError, LeaseError, ProposeError, ReadError, RestoreError, SnapshotError, TransferError, UsageError,
};
pub use gate::PersistError;
pub use membership::{MEMBERS_MAX, Membership, MembershipError};
pub use message::{AppendOutcome, ConflictHint, Envelope, Message, TERM_MAX};
pub use raft::{Counters, Raft, Setup};
pub use reads::ReadState;
pub use ready::{PersistId, PersistRequest, Ready, ReceivedSnapshot, Role, SoftState};
pub use state::{DurableState, HardState, SnapshotMeta};
pub use state_machine::{MachineSnapshotError, StateMachine};
