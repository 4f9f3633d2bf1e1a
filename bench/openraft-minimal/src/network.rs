//! The in-process network: every RPC is a direct call on the target's
//! `Raft` handle, with no serialization and no copy beyond what openraft's
//! own types move.
//!
//! In: openraft's append-entries, vote and snapshot requests for a target
//! node id. Out: the target's answer, or `Unreachable` for an id that is not
//! (yet) registered in the [`Router`].

use crate::types::{BenchRaft, TypeConfig};
use openraft::BasicNode;
use openraft::error::{Infallible, InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

type RpcResult<T, E = Infallible> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

#[derive(Debug)]
struct NotRegistered(u64);

impl fmt::Display for NotRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} is not registered in the router", self.0)
    }
}

impl std::error::Error for NotRegistered {}

/// The members' handles by node id, shared by every node's network.
#[derive(Clone, Default)]
pub struct Router {
    members: Arc<RwLock<BTreeMap<u64, BenchRaft>>>,
    append_calls: Arc<AtomicU64>,
}

impl Router {
    pub fn register(&self, id: u64, raft: BenchRaft) {
        self.members.write().expect("router lock poisoned").insert(id, raft);
    }

    /// Append-entries calls made so far (heartbeats included).
    pub fn append_calls(&self) -> u64 {
        self.append_calls.load(Ordering::Relaxed)
    }

    // The error type is the one openraft's `RaftNetwork` methods return.
    #[allow(clippy::result_large_err)]
    fn get<E: std::error::Error>(&self, id: u64) -> RpcResult<BenchRaft, E> {
        let members = self.members.read().expect("router lock poisoned");
        members.get(&id).cloned().ok_or_else(|| RPCError::Unreachable(Unreachable::new(&NotRegistered(id))))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Connection {
        Connection { target, router: self.clone() }
    }
}

/// One node's view of one peer.
pub struct Connection {
    target: u64,
    router: Router,
}

impl Connection {
    fn remote<E: std::error::Error>(&self, e: RaftError<u64, E>) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        self.router.append_calls.fetch_add(1, Ordering::Relaxed);
        let raft = self.router.get(self.target)?;
        raft.append_entries(rpc).await.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let raft = self.router.get(self.target)?;
        raft.install_snapshot(rpc).await.map_err(|e| self.remote(e))
    }

    async fn vote(&mut self, rpc: VoteRequest<u64>, _option: RPCOption) -> RpcResult<VoteResponse<u64>> {
        let raft = self.router.get(self.target)?;
        raft.vote(rpc).await.map_err(|e| self.remote(e))
    }
}
