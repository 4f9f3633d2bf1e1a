//! The proxy's core loop: one task owns the [`ProxyCore`] and feeds it
//! agents' keep-alives and reports, the stations' batch answers, the
//! commands polled for its agents, and the flush tick.
//!
//! In: [`Inbox`] messages from the agent-facing handlers and the command
//! poller; the answers of the batches it sent. Out: each batch POSTed to
//! the station believed to lead (one at a time: the core keeps one in
//! flight), each keep-alive answered to the handler waiting for it, the
//! latest commands per agent in [`Shared`] (and a notice when they change),
//! and agents the stations moved
//! marked there, so their next keep-alive tells them to ask again.
//!
//! The station to send to: the first endpoint, then the leader's URL when a
//! follower names it (`NotLeader` with `leader_url`), the next endpoint
//! when an exchange fails or a follower names none. A batch whose POST fails is answered
//! `Busy` here at once, so the core queues it again in front.
//!
//! Bounds: the inbox (`INBOX_LEN_MAX`, handlers refuse when it is full),
//! keep-alives awaiting a batch answer (`waiters_len_max`; abandoned ones
//! are swept every tick), the moved set (`ProxyConfig::agents_max`), and
//! the core's own (queue, batch, agents, commands).

use crate::proxy::Shared;
use haven_daemon::proxy_api::BatchReply;
use haven_ha::{AgentCommand, AgentKeepAlive, BatchAnswer, BatchOutcome, Event, ProxyConfig, ProxyCore, ProxyOutput};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};

/// Messages waiting for the core task.
pub const INBOX_LEN_MAX: usize = 4_096;

/// What the agent-facing side and the poller hand the core.
#[derive(Debug)]
pub enum Inbox {
    /// Answered with the TTL in seconds, `None` when the lease is gone;
    /// the sender is dropped when the keep-alive could not be queued.
    KeepAlive {
        agent: NodeId,
        lease: i64,
        reply: oneshot::Sender<Option<i64>>,
    },
    Reports {
        agent: NodeId,
        events: Vec<Event>,
    },
    /// Every pending command of this proxy's agents, as a station has them.
    Commands(Vec<AgentCommand>),
}

/// How the host reaches the stations.
#[derive(Clone, Debug)]
pub struct HostSettings {
    pub id: NodeId,
    pub endpoints: Vec<String>,
    pub core: ProxyConfig,
    pub waiters_len_max: usize,
}

struct Host {
    settings: HostSettings,
    core: ProxyCore,
    http: reqwest::Client,
    shared: Arc<Mutex<Shared>>,
    changed: Arc<Notify>,
    /// Keep-alives awaiting their batch's answer, by (agent, seq given here).
    waiters: BTreeMap<(NodeId, u64), oneshot::Sender<Option<i64>>>,
    seq_next: u64,
    /// Where batches go now: an endpoint, or a URL a follower named.
    leader: String,
    endpoint_next: usize,
    answers: mpsc::Sender<(u64, Result<BatchReply, String>)>,
    started: Instant,
}

/// Runs the core until the inbox closes.
/// `changed` is notified whenever an agent's commands in `shared` change.
pub async fn run(
    settings: HostSettings,
    shared: Arc<Mutex<Shared>>,
    changed: Arc<Notify>,
    mut inbox: mpsc::Receiver<Inbox>,
) {
    assert!(!settings.endpoints.is_empty(), "the command checks there is an endpoint");
    let timeout = Duration::from_millis(settings.core.reply_timeout_ms);
    let http = reqwest::Client::builder().timeout(timeout).build().expect("a client with a timeout builds");
    let tick_every = Duration::from_millis(settings.core.flush_interval_ms.max(1));
    // One batch is in flight at a time; a few late answers may queue behind it.
    let (answers, mut answered) = mpsc::channel(16);
    let mut host = Host {
        core: ProxyCore::new(settings.core.clone()),
        leader: settings.endpoints[0].clone(),
        settings,
        http,
        shared,
        changed,
        waiters: BTreeMap::new(),
        seq_next: 1,
        endpoint_next: 1,
        answers,
        started: Instant::now(),
    };
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let outputs = tokio::select! {
            message = inbox.recv() => match message {
                Some(message) => host.take(message),
                None => break,
            },
            Some((seq, reply)) = answered.recv() => host.answered(seq, reply),
            _ = tick.tick() => {
                host.waiters.retain(|_, reply| !reply.is_closed());
                host.core.tick(host.now_ms())
            }
        };
        host.emit(outputs);
    }
}

impl Host {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn take(&mut self, message: Inbox) -> Vec<ProxyOutput> {
        let now_ms = self.now_ms();
        match message {
            Inbox::KeepAlive { agent, lease, reply } => {
                if self.waiters.len() >= self.settings.waiters_len_max {
                    return Vec::new(); // `reply` dropped: the handler answers 503
                }
                let seq = self.seq_next;
                self.seq_next += 1;
                self.waiters.insert((agent, seq), reply);
                self.core.keep_alive(now_ms, AgentKeepAlive { agent, client: agent.0, seq, lease })
            }
            Inbox::Reports { agent, events } => {
                events.into_iter().flat_map(|event| self.core.report(now_ms, agent, event)).collect()
            }
            Inbox::Commands(commands) => {
                let mut by_agent: BTreeMap<NodeId, Vec<AgentCommand>> = BTreeMap::new();
                for output in self.core.commands(commands) {
                    if let ProxyOutput::Command(command) = output {
                        by_agent.entry(command.node).or_default().push(command);
                    }
                }
                let mut shared = self.shared.lock().expect("never poisoned");
                if shared.commands != by_agent {
                    shared.commands = by_agent;
                    self.changed.notify_waiters(); // agents' fetches held in `serve.rs`
                }
                Vec::new()
            }
        }
    }

    /// A batch's HTTP exchange ended: follow the leader, then let the core
    /// see the answer (a failed exchange as `Busy`, which queues it again).
    fn answered(&mut self, seq: u64, reply: Result<BatchReply, String>) -> Vec<ProxyOutput> {
        let answer = match reply {
            Ok(BatchReply { answer, leader_url }) => {
                match (&answer.outcome, leader_url) {
                    (BatchOutcome::NotLeader { .. }, Some(url)) => self.leader = url,
                    (BatchOutcome::NotLeader { .. }, None) => self.next_station(),
                    _ => {}
                }
                answer
            }
            Err(e) => {
                tracing::debug!(station = %self.leader, error = %e, seq, "batch not answered");
                self.next_station();
                BatchAnswer { seq, outcome: BatchOutcome::Busy }
            }
        };
        self.core.answer(self.now_ms(), answer)
    }

    fn next_station(&mut self) {
        let endpoints = &self.settings.endpoints;
        self.leader = endpoints[self.endpoint_next % endpoints.len()].clone();
        self.endpoint_next = self.endpoint_next.wrapping_add(1);
    }

    fn emit(&mut self, outputs: Vec<ProxyOutput>) {
        for output in outputs {
            match output {
                ProxyOutput::Batch(batch) => {
                    let url = format!("{}/haven/v1/proxies/{}/batch", self.leader, self.settings.id.0);
                    let (http, answers) = (self.http.clone(), self.answers.clone());
                    tokio::spawn(async move {
                        let seq = batch.seq;
                        let reply = post_batch(&http, &url, &batch).await;
                        let _ = answers.send((seq, reply)).await;
                    });
                }
                ProxyOutput::KeepAlive { to, ttl_seconds } => {
                    if let Some(reply) = self.waiters.remove(&(to.agent, to.seq)) {
                        let _ = reply.send(ttl_seconds);
                    }
                }
                ProxyOutput::Assigned { agent, proxy } => {
                    tracing::info!(agent = agent.0, proxy = ?proxy.map(|p| p.0), "agent assigned elsewhere");
                    let mut shared = self.shared.lock().expect("never poisoned");
                    if shared.moved.len() < self.settings.core.agents_max {
                        shared.moved.insert(agent);
                    }
                    shared.commands.remove(&agent);
                    // Its keep-alives still waiting (one beyond `agents_max` is never
                    // queued) end now; their handlers tell the agent it moved.
                    self.waiters.retain(|(waiting, _), _| *waiting != agent);
                }
                // The exchange times out with the core (same timeout) and its
                // failure moves on to the next station: once is enough.
                ProxyOutput::TimedOut { seq } => tracing::debug!(seq, station = %self.leader, "batch timed out"),
                ProxyOutput::Command(_) => {} // only from `commands`, handled there
            }
        }
    }
}

async fn post_batch(http: &reqwest::Client, url: &str, batch: &haven_ha::ProxyBatch) -> Result<BatchReply, String> {
    let response = http.post(url).json(batch).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    response.json().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::{Json, Router};
    use haven_ha::{BatchLease, ProxyBatch, Renewal};

    type Seen = Arc<Mutex<Vec<ProxyBatch>>>;

    /// A station on a loopback port that records the batches of proxy 7
    /// and answers each with `reply`.
    async fn station(reply: fn(&ProxyBatch) -> BatchReply) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let handler = move |Json(batch): Json<ProxyBatch>| {
            let answer = reply(&batch);
            record.lock().unwrap().push(batch);
            async move { Json(answer) }
        };
        let app = Router::new().route("/haven/v1/proxies/7/batch", post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn renew_all(batch: &ProxyBatch) -> BatchReply {
        let renewals = batch.leases.iter().map(|l| (l.lease, Renewal::Renewed { ttl_seconds: 1 })).collect();
        let outcome = BatchOutcome::Done { renewals, reports_proposed: true, moved: Vec::new() };
        BatchReply { answer: BatchAnswer { seq: batch.seq, outcome }, leader_url: None }
    }

    async fn keep_alive(inbox: &mpsc::Sender<Inbox>, agent: u64, lease: i64) -> Option<i64> {
        let (reply, answer) = oneshot::channel();
        inbox.send(Inbox::KeepAlive { agent: NodeId(agent), lease, reply }).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), answer).await.expect("answered in time").expect("queued")
    }

    #[tokio::test]
    async fn a_keep_alive_is_answered_once_the_leader_a_follower_named_renewed_it() {
        let (leader_url, at_leader) = station(renew_all).await;
        // Handlers are plain fns: the follower learns the leader's URL from a static.
        static LEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        LEADER.set(leader_url).unwrap();
        let (follower_url, at_follower) = station(|batch| BatchReply {
            answer: BatchAnswer { seq: batch.seq, outcome: BatchOutcome::NotLeader { leader_hint: Some(NodeId(2)) } },
            leader_url: LEADER.get().cloned(),
        })
        .await;
        let settings = HostSettings {
            id: NodeId(7),
            endpoints: vec![follower_url],
            core: ProxyConfig::default(),
            waiters_len_max: 8,
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (inbox, inbox_rx) = mpsc::channel(8);
        tokio::spawn(run(settings, shared, Arc::default(), inbox_rx));

        assert_eq!(keep_alive(&inbox, 4, 40).await, Some(1));
        let lease = |agent, lease| BatchLease { agent: NodeId(agent), lease };
        let leases = |seen: &Seen| seen.lock().unwrap().iter().map(|b| b.leases.clone()).collect::<Vec<_>>();
        assert_eq!(leases(&at_follower), vec![vec![lease(4, 40)]], "tried first, named the leader");
        assert_eq!(leases(&at_leader), vec![vec![lease(4, 40)]], "the same batch again, at the leader");
        assert_eq!(keep_alive(&inbox, 5, 50).await, Some(1));
        assert_eq!(at_follower.lock().unwrap().len(), 1, "the next batch goes straight to the leader");
        assert_eq!(leases(&at_leader)[1], vec![lease(5, 50)]);
    }
}
