//! Starts a cluster of in-memory members in the current tokio runtime.
//!
//! In: the member count and the Raft configuration. Out: a [`Cluster`] whose
//! member 1 leads, ready for client writes, and a way to shut it down.

use crate::log_store::LogStore;
use crate::network::Router;
use crate::state_machine::StateMachine;
use crate::types::BenchRaft;
use anyhow::{Context, Result};
use openraft::{BasicNode, Config, SnapshotPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long the first election may take before the run is abandoned.
const ELECTION_TIMEOUT_MS_MAX: u64 = 10_000;

pub struct Cluster {
    pub router: Router,
    pub members: Vec<BenchRaft>,
}

/// The Raft settings that match haven's replica defaults where both have one:
/// 256 entries per append, a snapshot every 10,000 entries, 50 ms heartbeats.
pub fn config() -> Result<Arc<Config>> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        max_payload_entries: 256,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
        purge_batch_size: 1024,
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

impl Cluster {
    /// Starts `members` nodes (ids 1..=members), makes node 1 initialize the
    /// group, and waits until it leads.
    pub async fn start(members: u64, config: Arc<Config>) -> Result<Cluster> {
        let router = Router::default();
        let mut rafts = Vec::new();
        for id in 1..=members {
            let raft = BenchRaft::new(id, config.clone(), router.clone(), LogStore::default(), StateMachine::default())
                .await
                .with_context(|| format!("starting member {id}"))?;
            router.register(id, raft.clone());
            rafts.push(raft);
        }
        let nodes: BTreeMap<u64, BasicNode> = (1..=members).map(|id| (id, BasicNode::default())).collect();
        rafts[0].initialize(nodes).await.context("initializing the group")?;
        rafts[0]
            .wait(Some(Duration::from_millis(ELECTION_TIMEOUT_MS_MAX)))
            .current_leader(1, "member 1 leads")
            .await
            .context("waiting for member 1 to lead")?;
        Ok(Cluster { router, members: rafts })
    }

    pub fn leader(&self) -> &BenchRaft {
        &self.members[0]
    }

    pub async fn shutdown(self) -> Result<()> {
        for raft in self.members {
            raft.shutdown().await.context("shutting a member down")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Put;

    #[tokio::test(flavor = "current_thread")]
    async fn writes_to_the_leader_reach_every_member() -> Result<()> {
        let cluster = Cluster::start(3, config()?).await?;
        let applied_before = cluster.leader().metrics().borrow().last_applied.map_or(0, |id| id.index);
        let writes = 300;
        for i in 0..writes {
            let put = Put { key: format!("k{}", i % 7), value: vec![1; 8] };
            cluster.leader().client_write(put).await?;
        }
        for (member, raft) in cluster.members.iter().enumerate() {
            raft.wait(Some(Duration::from_secs(10)))
                .applied_index_at_least(Some(applied_before + writes), "caught up")
                .await
                .with_context(|| format!("member {} never applied the writes", member + 1))?;
        }
        assert!(cluster.router.append_calls() > 0, "followers caught up without an append call");
        cluster.shutdown().await
    }
}
