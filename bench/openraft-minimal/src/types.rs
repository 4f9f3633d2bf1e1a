//! The Raft type configuration of this benchmark and its one command.
//!
//! In: nothing. Out: [`TypeConfig`] (u64 node ids, [`Put`] commands, the
//! put's revision as the reply) and the [`BenchRaft`] handle type.

use std::io::Cursor;

/// A key-value put, the command every client writes (the same workload as
/// haven's load generator: one key per client, a fixed-size value).
#[derive(Clone, Debug)]
pub struct Put {
    pub key: String,
    pub value: Vec<u8>,
}

/// The revision the state machine gave an applied put.
#[derive(Clone, Copy, Debug, Default)]
pub struct Revision(pub u64);

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Put,
        R = Revision,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type BenchRaft = openraft::Raft<TypeConfig>;
