//! A proxy, as pure logic: it gathers the keep-alives and reports of many
//! agents into one batch for the station leader, and fans the leader's one
//! answer (and its commands) back out to the agents.
//!
//! In: an agent's keep-alive (its lease, and the client and seq that pair the
//! answer with its request), an agent's report, a tick, the leader's answer
//! to a batch, and the commands the leader sends for this proxy's agents;
//! every call carries the host's time in milliseconds. Out: [`ProxyOutput`]s
//! — at most one batch per flush, keep-alive answers, commands and
//! assignment notices for agents, and a notice that a batch timed out.
//!
//! Flushing: a batch leaves when `batch_len_max` items are queued, or on the
//! first tick `flush_interval_ms` after the oldest queued item arrived, and
//! only while no batch awaits its answer. One batch in flight keeps the
//! reports in order: a batch refused or timed out goes again before anything
//! newer, so an agent's "active" can never overtake its later "exited" (a
//! second batch in flight could, and the coordinator would believe an
//! instance that ended was running again).
//!
//! Safety of renewals: an agent counts its lease from the time it *sent* its
//! keep-alive. A batch's renewal therefore answers only the requests that
//! were in that batch: the leader renewed after it received the batch, so
//! after each of those requests was sent. A request that arrived after the
//! batch left waits for the next batch, even for the same lease. A batch
//! that is refused (`NotLeader`, `Busy`) or times out is queued again at the
//! front: renewing later than the agent asked is always safe.
//!
//! Bounds and what overflow drops (the protocol tolerates each loss):
//! - `queue_len_max` items waiting for a batch: the oldest is dropped. A
//!   dropped keep-alive is retried by its agent after its own timeout (or
//!   its agent falls back to the stations); a dropped report is repeated by
//!   its agent (running instances every round, exits for many rounds,
//!   command results when the coordinator re-issues the command).
//! - `agents_max` agents served: a keep-alive from one more agent is not
//!   queued; the agent is told to talk to the stations (`Assigned` with no
//!   proxy). Agents silent for `agent_idle_ms` are forgotten on a tick.
//! - one batch awaiting an answer; `batch_len_max` items each.
//! - `commands_len_max` commands fanned out per leader message; the rest are
//!   dropped (the coordinator re-issues unacknowledged commands).
//!
//! Reports are at least once: a batch that timed out may have been
//! proposed, and is sent again; the coordinator ignores what it knows. A
//! report older than `report_age_ms_max` is dropped instead of sent: while
//! the proxy cannot reach the leader its agents turn to the stations, and a
//! stale "active" delivered after the agent's direct "exited" would undo it
//! (the agent repeats what still holds anyway).

use crate::command::AgentCommand;
use crate::input::Event;
use haven_runtime::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub agents_max: usize,
    pub batch_len_max: usize,
    pub queue_len_max: usize,
    pub flush_interval_ms: u64,
    /// A batch unanswered this long is queued again (and the host told, so
    /// it can try another station).
    pub reply_timeout_ms: u64,
    pub agent_idle_ms: u64,
    pub commands_len_max: usize,
    pub report_age_ms_max: u64,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            agents_max: 1_000,
            batch_len_max: 2_000,
            queue_len_max: 8_000,
            flush_interval_ms: 20,
            reply_timeout_ms: 200,
            agent_idle_ms: 10_000,
            commands_len_max: 10_000,
            report_age_ms_max: 500,
        }
    }
}

/// An agent's keep-alive as the proxy received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeepAlive {
    pub agent: NodeId,
    pub client: u64,
    pub seq: u64,
    pub lease: i64,
}

/// One lease to renew, for the agent that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLease {
    pub agent: NodeId,
    pub lease: i64,
}

/// What a proxy sends the station leader: each lease once, and the reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyBatch {
    /// Pairs the answer with the batch; grows by one per batch sent.
    pub seq: u64,
    pub leases: Vec<BatchLease>,
    pub reports: Vec<Event>,
}

/// The leader's answer to one lease of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Renewal {
    /// Renewed for this many seconds from the renewal.
    Renewed { ttl_seconds: i64 },
    /// Unknown or already expiring: its agent starts a new session.
    NotFound,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOutcome {
    /// Every lease answered (in the batch's order); the reports proposed
    /// (`reports_proposed`) or refused by a full log; and the batch's agents
    /// that the stations assign to another proxy (or to none).
    Done {
        renewals: Vec<(i64, Renewal)>,
        reports_proposed: bool,
        moved: Vec<(NodeId, Option<NodeId>)>,
    },
    NotLeader {
        leader_hint: Option<NodeId>,
    },
    Busy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    pub seq: u64,
    pub outcome: BatchOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyOutput {
    /// Send to the station believed to lead.
    Batch(ProxyBatch),
    /// Answer the agent's keep-alive (`None`: the lease is gone).
    KeepAlive { to: AgentKeepAlive, ttl_seconds: Option<i64> },
    /// Forward to `command.node`.
    Command(AgentCommand),
    /// Tell `agent` which proxy to use from now on (`None`: the stations).
    Assigned { agent: NodeId, proxy: Option<NodeId> },
    /// Batch `seq` went unanswered: the host may try another station.
    TimedOut { seq: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    KeepAlive(AgentKeepAlive),
    /// With the time it arrived.
    Report(Event, u64),
}

#[derive(Debug)]
struct Sent {
    at_ms: u64,
    items: Vec<Item>,
}

#[derive(Debug)]
pub struct ProxyCore {
    config: ProxyConfig,
    queue: VecDeque<Item>,
    /// When the oldest queued item arrived.
    queued_since_ms: Option<u64>,
    in_flight: BTreeMap<u64, Sent>,
    seq_next: u64,
    /// Agents served, with when each was last heard.
    agents: BTreeMap<NodeId, u64>,
    dropped: u64,
}

impl ProxyCore {
    pub fn new(config: ProxyConfig) -> ProxyCore {
        assert!(config.batch_len_max > 0 && config.queue_len_max >= config.batch_len_max);
        ProxyCore {
            config,
            queue: VecDeque::new(),
            queued_since_ms: None,
            in_flight: BTreeMap::new(),
            seq_next: 1,
            agents: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Items dropped so far: the queue was full, or a report grew too old.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn agents_len(&self) -> usize {
        self.agents.len()
    }

    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    pub fn keep_alive(&mut self, now_ms: u64, keep_alive: AgentKeepAlive) -> Vec<ProxyOutput> {
        if !self.hear(now_ms, keep_alive.agent) {
            return vec![ProxyOutput::Assigned { agent: keep_alive.agent, proxy: None }];
        }
        self.enqueue(now_ms, Item::KeepAlive(keep_alive));
        self.flush(now_ms, false)
    }

    /// An agent's report; one from an agent beyond `agents_max` is dropped.
    pub fn report(&mut self, now_ms: u64, agent: NodeId, event: Event) -> Vec<ProxyOutput> {
        if !self.hear(now_ms, agent) {
            return vec![ProxyOutput::Assigned { agent, proxy: None }];
        }
        self.enqueue(now_ms, Item::Report(event, now_ms));
        self.flush(now_ms, false)
    }

    /// Times out unanswered batches, forgets idle agents, flushes if due.
    pub fn tick(&mut self, now_ms: u64) -> Vec<ProxyOutput> {
        let timeout = self.config.reply_timeout_ms;
        let late: Vec<u64> =
            self.in_flight.iter().filter(|(_, s)| now_ms.saturating_sub(s.at_ms) >= timeout).map(|(&q, _)| q).collect();
        let mut out = Vec::new();
        for seq in late {
            self.requeue(seq);
            out.push(ProxyOutput::TimedOut { seq });
        }
        let idle = self.config.agent_idle_ms;
        self.agents.retain(|_, heard| now_ms.saturating_sub(*heard) < idle);
        let due = self.queued_since_ms.is_some_and(|at| now_ms.saturating_sub(at) >= self.config.flush_interval_ms);
        out.extend(self.flush(now_ms, due));
        out
    }

    /// The leader's answer to a batch; an unknown or repeated one is ignored.
    pub fn answer(&mut self, now_ms: u64, answer: BatchAnswer) -> Vec<ProxyOutput> {
        if !self.in_flight.contains_key(&answer.seq) {
            return Vec::new();
        }
        let BatchOutcome::Done { renewals, moved, .. } = answer.outcome else {
            self.requeue(answer.seq);
            return Vec::new();
        };
        let sent = self.in_flight.remove(&answer.seq).expect("looked up above");
        let renewed: BTreeMap<i64, Renewal> = renewals.into_iter().collect();
        let mut out = Vec::new();
        for item in sent.items {
            let Item::KeepAlive(to) = item else { continue };
            // A lease the leader did not answer about is treated as not renewed.
            let ttl_seconds = match renewed.get(&to.lease) {
                Some(Renewal::Renewed { ttl_seconds }) => Some(*ttl_seconds),
                Some(Renewal::NotFound) => None,
                None => continue,
            };
            out.push(ProxyOutput::KeepAlive { to, ttl_seconds });
        }
        for (agent, proxy) in moved {
            self.agents.remove(&agent);
            out.push(ProxyOutput::Assigned { agent, proxy });
        }
        out.extend(self.flush(now_ms, false));
        out
    }

    /// The leader's commands for this proxy's agents, one output each.
    pub fn commands(&mut self, commands: Vec<AgentCommand>) -> Vec<ProxyOutput> {
        commands.into_iter().take(self.config.commands_len_max).map(ProxyOutput::Command).collect()
    }

    /// Notes that `agent` was heard; false if it would be one agent too many.
    fn hear(&mut self, now_ms: u64, agent: NodeId) -> bool {
        if !self.agents.contains_key(&agent) && self.agents.len() >= self.config.agents_max {
            return false;
        }
        self.agents.insert(agent, now_ms);
        true
    }

    fn enqueue(&mut self, now_ms: u64, item: Item) {
        if self.queue.len() >= self.config.queue_len_max {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(item);
        self.queued_since_ms.get_or_insert(now_ms);
    }

    /// Puts a batch's items back at the front of the queue, in their order,
    /// due as they were when the batch left (so a timed-out batch goes
    /// again on the next tick).
    fn requeue(&mut self, seq: u64) {
        let Some(sent) = self.in_flight.remove(&seq) else { return };
        for item in sent.items.into_iter().rev() {
            if self.queue.len() >= self.config.queue_len_max {
                self.dropped += 1;
                continue; // the newest items stay; this older one is dropped
            }
            self.queue.push_front(item);
        }
        if !self.queue.is_empty() {
            self.queued_since_ms = Some(self.queued_since_ms.map_or(sent.at_ms, |at| at.min(sent.at_ms)));
        }
    }

    /// Sends a full batch, or with `due` a partial one, unless one is in flight.
    fn flush(&mut self, now_ms: u64, due: bool) -> Vec<ProxyOutput> {
        let ready = self.queue.len() >= self.config.batch_len_max || due && !self.queue.is_empty();
        match self.in_flight.is_empty() && ready {
            true => vec![ProxyOutput::Batch(self.take_batch(now_ms))],
            false => Vec::new(),
        }
    }

    fn take_batch(&mut self, now_ms: u64) -> ProxyBatch {
        let len = self.queue.len().min(self.config.batch_len_max);
        let age_max = self.config.report_age_ms_max;
        let fresh = |item: &Item| !matches!(item, Item::Report(_, at_ms) if now_ms.saturating_sub(*at_ms) > age_max);
        let (items, stale): (Vec<Item>, Vec<Item>) = self.queue.drain(..len).partition(fresh);
        self.dropped += stale.len() as u64;
        self.queued_since_ms = if self.queue.is_empty() { None } else { Some(now_ms) };
        let seq = self.seq_next;
        self.seq_next += 1;
        let mut batch = ProxyBatch { seq, leases: Vec::new(), reports: Vec::new() };
        let mut leases = BTreeSet::new();
        for item in &items {
            match item {
                Item::KeepAlive(k) if leases.insert(k.lease) => {
                    batch.leases.push(BatchLease { agent: k.agent, lease: k.lease })
                }
                Item::KeepAlive(_) => {}
                Item::Report(event, _) => batch.reports.push(event.clone()),
            }
        }
        self.in_flight.insert(seq, Sent { at_ms: now_ms, items });
        batch
    }
}
