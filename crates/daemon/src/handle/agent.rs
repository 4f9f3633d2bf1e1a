//! An agent's side of the HA state through [`StationHandle`].
//!
//! In: an agent's join or observation. Out: the event's id once the leader
//! queued it (at least once, like the operator's actions: a retried report
//! is a duplicate the coordinator ignores), or this member's view of the
//! agent's pending commands — only commands of committed decisions are in
//! the graph, so any member may answer.

use super::StationHandle;
use crate::forward::Forwarded;
use crate::routes::Answer;
use haven_gateway::BackendError;
use haven_ha::AgentCommand;
use haven_runtime::NodeId;
use haven_station::{HaReport, HaRequest};

impl StationHandle {
    /// Queues an agent's report through the leader; the event's id.
    pub async fn ha_report(&self, report: HaReport) -> Result<u64, BackendError> {
        let inner = &self.inner;
        let Ok(_permit) = inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let session = inner.sessions.lock().expect("never poisoned").take();
        let (client, seq) = session;
        let result = self.execute(Forwarded::Ha(HaRequest { client, seq, report }), false, self.deadline()).await;
        inner.sessions.lock().expect("never poisoned").give_back(session);
        match result? {
            Answer::Ha(Ok(id)) => Ok(id),
            _ => Err(BackendError::Timeout),
        }
    }

    /// The commands the coordinator is waiting for `node` to acknowledge.
    pub async fn agent_commands(&self, node: NodeId) -> Result<Vec<AgentCommand>, BackendError> {
        let view = self.ha_view().await?;
        let pending = view.graph.instances.into_values().filter(|i| i.node == node);
        Ok(pending.filter_map(|i| i.command.map(|issued| issued.command)).collect())
    }
}
