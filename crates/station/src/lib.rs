//! One replica of the station: the Raft core, the write-ahead log and the
//! key-value store composed into a single component, so the same code runs
//! in the simulator and in the `haven station` daemon.
//!
//! In: Raft messages from peer replicas, client requests, timer firings and
//! disk completions.
//! Out: Raft messages, client replies, disk requests (through the WAL), and
//! [`ReplicaEvent`] observations (role changes, applied entries) that the
//! simulator's checkers and the daemon's logs consume.
//!
//! Client requests carry a client id and a sequence number; the replicated
//! [`Sessions`] table makes a retried command apply exactly once (Raft
//! thesis §6.3). Leases expire by the leader's clock, through the log; a new
//! leader first extends every lease (see the `leases` module).

mod backups;
pub mod command;
pub mod config;
pub mod ha_fence;
mod ha_proxy;
pub mod ha_state;
mod ha_steering;
mod leases;
pub mod member_plan;
mod member_steering;
pub mod members;
pub mod msg;
mod node_leases;
pub mod persist;
mod reads;
mod relays;
pub mod replica;
pub mod restore;
mod running;
pub mod sessions;
pub mod snapshot_file;
pub mod snapshot_writer;
mod snapshots;
pub mod state_machine;
mod watches;

pub use command::Command;
pub use config::ReplicaConfig;
pub use ha_fence::{FenceConfig, FenceConfigError};
pub use ha_state::{HaApplied, HaState};
pub use members::{MemberError, MemberOp, MemberRecord, MemberTable, cluster_id, peer_ids, was_removed};
pub use msg::{
    BackupImage, COMMANDS_LEN_MAX, ClientReply, ClientRequest, CommandsOf, HaReply, HaReport, HaRequest, HaView,
    KeepAliveReply, KeepAliveRequest, MemberAnswer, MemberReply, MemberRequest, Relayed, ReplyError, StationMsg,
    WatchCreate, WatchEvents,
};
pub use replica::{Replica, ReplicaEvent, ReplicaIo, ReplicaTimer};
pub use sessions::Sessions;
pub use state_machine::StateMachine;
