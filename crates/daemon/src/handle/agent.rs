//! An agent's and a proxy's side of the HA state through [`StationHandle`].
//!
//! In: an agent's join or observation, a proxy's batch, or a question about
//! commands and assignments. Out: the event's id once the leader queued it
//! (at least once, like the operator's actions: a retried report is a
//! duplicate the coordinator ignores); the local replica's answer to a
//! proxy batch; or this member's view of pending commands and of which
//! proxy a node reports through — only commands of committed decisions are
//! in the graph, so any member may answer. Both come from the replica's
//! graph and indexes (`CommandsQuery`, `ProxyPlaceQuery`), never from a copy
//! of the graph.
//!
//! A proxy batch goes to the local replica once, under a seq this member
//! draws (proxies number their batches independently, so their own seqs
//! could collide here); the answer carries the proxy's seq again. A
//! follower's replica answers `NotLeader` with its hint: the proxy, not
//! this member, goes to the leader, so a batch costs the leader one
//! exchange and no member two.

use super::StationHandle;
use crate::agent_api::{ProxyPlace, held_until_changed};
use crate::forward::Forwarded;
use crate::routes::Answer;
use haven_gateway::BackendError;
use haven_ha::{AgentCommand, BatchAnswer, BatchOutcome, ProxyBatch};
use haven_runtime::NodeId;
use haven_station::{CommandsOf, HaReport, HaRequest, StationMsg};
use std::time::Duration;

/// The longest a batch waits for the local replica: a proxy times a batch
/// out sooner than this and sends it again (maybe elsewhere).
const BATCH_WAIT_MAX: Duration = Duration::from_secs(1);

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

    /// The commands of `of` once they differ from what its agent or proxy
    /// holds (their [`commands_digest`](crate::agent_api::commands_digest)
    /// is `known`), or as they are after
    /// `wait`: a fetch waits here for the step that changes them, woken by
    /// the station's [`CommandBell`](crate::command_bell::CommandBell),
    /// instead of asking again every poll.
    pub async fn commands_changed(
        &self,
        of: CommandsOf,
        known: u32,
        wait: Duration,
    ) -> Result<Vec<AgentCommand>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        let bell = match of {
            CommandsOf::Node(node) => Some(node),
            CommandsOf::Proxy(_) => None, // its agents are in the graph, not here
        };
        let Some(listener) = self.inner.progress.command_bell().listen(bell) else {
            return self.commands_of(of).await; // too many wait already: an ordinary poll
        };
        held_until_changed(listener.bell(), known, deadline, || self.commands_of(of)).await
    }

    /// The commands awaited from a node, or from every node the graph
    /// assigns to a proxy. Asked of the local replica, which answers from
    /// its graph's indexes: a poll costs what awaits, not a copy of the graph.
    pub async fn commands_of(&self, of: CommandsOf) -> Result<Vec<AgentCommand>, BackendError> {
        let wait = self.inner.request_timeout;
        match self.ask_replica(wait, |client, seq| StationMsg::CommandsQuery { client, seq, of }).await? {
            Answer::Commands(commands) => Ok(commands),
            _ => Err(BackendError::Timeout),
        }
    }

    /// The live proxy `node` should report through, as this member's
    /// applied graph has it (the rule of the leader's `ProxyQuery`), asked
    /// of the local replica: an agent without a proxy asks once a second.
    pub async fn agent_proxy(&self, node: NodeId) -> Result<Option<ProxyPlace>, BackendError> {
        let wait = self.inner.request_timeout;
        match self.ask_replica(wait, |client, seq| StationMsg::ProxyPlaceQuery { client, seq, node }).await? {
            Answer::ProxyPlace(place) => Ok(place.map(|(proxy, url)| ProxyPlace { proxy, url })),
            _ => Err(BackendError::Timeout),
        }
    }

    /// Hands proxy `proxy`'s batch to the local replica and waits for its
    /// answer; `moved` lists only agents assigned away from `proxy`.
    pub async fn proxy_batch(&self, proxy: NodeId, batch: ProxyBatch) -> Result<BatchAnswer, BackendError> {
        let theirs = batch.seq;
        let wait = self.inner.request_timeout.min(BATCH_WAIT_MAX);
        let msg = |_, ours| StationMsg::ProxyBatch(ProxyBatch { seq: ours, ..batch });
        let Answer::Batch(mut answer) = self.ask_replica(wait, msg).await? else { return Err(BackendError::Timeout) };
        answer.seq = theirs;
        // The replica answers the local client, not the proxy, so it counts
        // every agent of the batch as assigned elsewhere: keep the real moves.
        if let BatchOutcome::Done { moved, .. } = &mut answer.outcome {
            moved.retain(|(_, to)| *to != Some(proxy));
        }
        Ok(answer)
    }

    /// The client URL of member `id`, for a proxy told to go to the leader.
    pub fn member_url(&self, id: u64) -> Option<String> {
        self.inner.roster.client_url(id)
    }
}
