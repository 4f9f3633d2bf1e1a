//! [`StationHandle`]: the running replica as the gateway's [`Backend`].
//!
//! In: store requests, keep-alives, watches and status queries from the
//! HTTP handlers (any number at once), and requests other members forward.
//! Out: the replica's answers. Operators' HA actions and views of the HA
//! state are in `handle/ha.rs`. Each request is sent to the local replica as
//! the local client node; when this member does not lead, the local
//! replica relays requests and keep-alives to the leader over the replica
//! links, and member changes and operators' actions are forwarded to the
//! leader over HTTP (`forward.rs`). Each is retried — same session, so applied at
//! most once — on "not leader" and "busy" until the request timeout.
//!
//! Bounds: at most `requests_pending_len_max` requests wait at once (more
//! get `TooManyRequests` at once), at most `watches_len_max` watches are
//! open, and every wait ends at the request timeout.

use crate::config::StationConfig;
use crate::forward::{Forwarded, Forwardee, Forwarder, Unanswered};
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::roster::{Roster, Standing};
use crate::routes::{Answer, Routes, SharedRoutes, dispatch, lock};
use crate::sessions::SessionPool;
use haven_gateway::{Backend, BackendError, Identity, Member, Status, WatchCreate, WatchUpdate};
use haven_net::LocalClient;
use haven_station::{
    ClientRequest, HaView, KeepAliveRequest, MemberAnswer, MemberError, MemberOp, MemberRequest, Relayed, ReplyError,
    StationMsg,
};
use haven_store::{LeaseId, Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

mod agent;
mod backup;
pub use backup::BackupRefused;
mod ha;

/// The longest one attempt waits before it is retried.
const ATTEMPT_WAIT_MAX: Duration = Duration::from_secs(1);
/// The pause before retrying after "no leader" or "busy".
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Updates a watch stream buffers before its watcher counts as too slow.
const WATCH_QUEUE_LEN_MAX: usize = 256;
/// The version `status` reports: the etcd API level served.
pub const API_VERSION: &str = "3.4.0";

/// Cheap to clone; every clone talks to the same replica.
#[derive(Clone, Debug)]
pub struct StationHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    me: u64,
    roster: Arc<Roster>,
    to_replica: mpsc::Sender<StationMsg>,
    routes: SharedRoutes,
    sessions: Mutex<SessionPool>,
    /// Session of reads and keep-alives: they take no log entry, so one
    /// client id with ever-new numbers serves them all.
    read_client: u64,
    read_seq: AtomicU64,
    watch_client: u64,
    watch_seq: AtomicU64,
    permits: Semaphore,
    watches_len_max: usize,
    request_timeout: Duration,
    forwarder: Forwarder,
    progress: Arc<Progress>,
    metrics: Arc<Metrics>,
    /// The last applied HA state fetched, shared by every reader that can
    /// take it slightly old (`recent_ha_view`).
    recent_view: tokio::sync::Mutex<Option<RecentView>>,
}

/// An applied HA state, when it was fetched and the applied index then.
#[derive(Debug)]
struct RecentView {
    at: Instant,
    applied: u64,
    view: Arc<HaView>,
}

/// Where one attempt goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Local,
    Leader(u64),
}

impl StationHandle {
    /// Takes over the local client of the replica and starts the dispatcher
    /// task routing its answers. `ids_base` seeds the client ids (draw it
    /// from the OS: it must differ between members and between runs).
    pub fn start(
        config: &StationConfig,
        local: LocalClient<StationMsg>,
        roster: Arc<Roster>,
        progress: Arc<Progress>,
        metrics: Arc<Metrics>,
        ids_base: u64,
    ) -> StationHandle {
        let LocalClient { tx, rx, .. } = local;
        let (read_client, watch_client) = (ids_base, ids_base.wrapping_add(1));
        let routes: SharedRoutes = Arc::new(Mutex::new(Routes::new(read_client)));
        let dispatcher = dispatch(rx, tx.clone(), routes.clone(), watch_client, metrics.clone());
        tokio::spawn(tracing::Instrument::in_current_span(dispatcher));
        let inner = Inner {
            me: config.id,
            roster: roster.clone(),
            to_replica: tx,
            routes,
            sessions: Mutex::new(SessionPool::new(ids_base.wrapping_add(2))),
            read_client,
            read_seq: AtomicU64::new(1),
            watch_client,
            watch_seq: AtomicU64::new(1),
            permits: Semaphore::new(config.requests_pending_len_max),
            watches_len_max: config.watches_len_max,
            request_timeout: config.request_timeout,
            forwarder: Forwarder::new(roster),
            progress,
            metrics,
            recent_view: tokio::sync::Mutex::new(None),
        };
        StationHandle { inner: Arc::new(inner) }
    }

    pub fn progress(&self) -> &Progress {
        &self.inner.progress
    }

    /// What is wrong with this member, in `status`'s `errors`: "no leader"
    /// first, in etcd's words, as etcd lists it before its alarms.
    fn status_errors(&self, leaderless: bool, fatal: Option<String>) -> Vec<String> {
        let no_leader = leaderless.then(|| BackendError::NoLeader.to_string());
        let removed = self.inner.roster.removed().then(|| BackendError::Removed.to_string());
        no_leader.into_iter().chain(removed).chain(fatal).collect()
    }

    /// How long a member change waits for Raft's configuration to follow
    /// the table: half the request timeout, so the answer comes before a
    /// client with the same timeout gives up on it.
    fn config_wait_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.inner.request_timeout / 2
    }

    /// Where member `id` stands in this member's table.
    pub(crate) fn standing(&self, id: u64) -> Standing {
        self.inner.roster.standing(id)
    }

    /// Serves a request another member forwarded: through this member's
    /// replica only, waiting at most `wait` (capped by the request timeout).
    pub(crate) async fn serve_forwarded(&self, request: Forwarded, wait: Duration) -> Forwardee {
        let Ok(_permit) = self.inner.permits.try_acquire() else { return Err(Unanswered::TooManyRequests) };
        let wait = wait.min(self.inner.request_timeout);
        self.ask_local(msg_of(&request, false), request.key(), wait).await
    }

    /// Runs `request` until it has an answer that is not "not leader" or
    /// "busy", or until `deadline`. If any attempt may have been proposed
    /// (it timed out, or its member stopped answering), running out of
    /// time is reported as `Timeout` ("request timed out": the outcome is
    /// unknown), never as "no leader" or "too many requests", which tell a
    /// client that nothing happened and that another member may be asked.
    async fn execute(&self, request: Forwarded, serializable: bool, deadline: Instant) -> Result<Answer, BackendError> {
        let mut last = BackendError::Timeout;
        let mut hint: Option<u64> = None;
        let mut maybe_proposed = false;
        loop {
            // A removed member hears from no leader any more: without this,
            // its clients would wait out the whole deadline. Once an attempt
            // may have been proposed, though, the outcome is unknown, and
            // "removed" would tell the client that nothing happened.
            if self.inner.roster.removed() {
                return Err(if maybe_proposed { BackendError::Timeout } else { BackendError::Removed });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(if maybe_proposed { BackendError::Timeout } else { last });
            }
            let wait = (deadline - now).min(ATTEMPT_WAIT_MAX);
            let target = if serializable { Target::Local } else { self.target(hint) };
            // Requests and keep-alives go to the leader through the local
            // replica, over the replica links; the rest over HTTP.
            let relayed = match target {
                Target::Local => None,
                Target::Leader(_) => relay_of(&request),
            };
            let through_local = target == Target::Local || relayed.is_some();
            let got = match (target, relayed) {
                (_, Some(msg)) => self.ask_local(msg, request.key(), wait).await,
                (Target::Local, None) => self.ask_local(msg_of(&request, serializable), request.key(), wait).await,
                (Target::Leader(leader), None) => self.inner.forwarder.send(leader, &request, wait).await,
            };
            let pause = match got {
                Ok(answer) => match answer.error() {
                    None if target != Target::Local => return Ok(self.applied_here(answer, deadline).await),
                    None => return Ok(answer),
                    Some(error @ (ReplyError::NotLeader { leader_hint } | ReplyError::LeaderLost { leader_hint })) => {
                        // A lost leader may apply it yet: from then on, running
                        // out of time is "timed out", never "no leader" (which
                        // clients take as not done, and retry as a new command).
                        maybe_proposed |= matches!(error, ReplyError::LeaderLost { .. });
                        hint = leader_hint.map(|l| l.0).filter(|&l| l != self.inner.me);
                        last = if hint.is_some() { BackendError::Timeout } else { BackendError::NoLeader };
                        hint.is_none()
                    }
                    Some(ReplyError::Busy) => {
                        last = BackendError::TooManyRequests;
                        true
                    }
                    Some(ReplyError::Store(e)) => return Err(BackendError::Store(e.clone())),
                    // An earlier try of this command was applied and its answer is gone.
                    Some(ReplyError::SessionExpired) => return Err(BackendError::Timeout),
                    Some(ReplyError::TooManyLeases { .. }) => return Err(BackendError::TooManyRequests),
                    Some(ReplyError::Member(e)) => return Err(member_error(e)),
                },
                Err(Unanswered::Stopped) if through_local => return Err(BackendError::Stopped),
                Err(unanswered) => {
                    hint = None;
                    maybe_proposed |= unanswered != Unanswered::TooManyRequests;
                    last = match unanswered {
                        Unanswered::TooManyRequests => BackendError::TooManyRequests,
                        Unanswered::Timeout | Unanswered::Stopped => BackendError::Timeout,
                    };
                    unanswered != Unanswered::Timeout
                }
            };
            // No leader answered (busy is an answer): this member may have
            // been removed without hearing of it.
            if last != BackendError::TooManyRequests {
                self.inner.roster.doubt();
            }
            if pause {
                tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()))).await;
            }
        }
    }

    /// `answer` from the leader, once this member has applied the revision
    /// it reports (or at `deadline`: the write is done either way). etcd's
    /// member answers a write once it applied it itself, so a serializable
    /// read or a header from the same member never shows an older state
    /// than the client's own write. A relayed write waits here briefly: the
    /// leader's answer carries its commit index, and the replica applies up
    /// to it in the turn it passes the answer on (`Raft::learn_commit`),
    /// not after its own fsync and the leader's next append.
    async fn applied_here(&self, answer: Answer, deadline: Instant) -> Answer {
        if let Answer::Reply(Ok(response)) = &answer {
            let revision = haven_gateway::json::response_revision(response);
            if revision > self.inner.progress.revision() {
                self.inner.progress.wait_revision(revision, deadline.into()).await;
            }
        }
        answer
    }

    /// The leader to forward to, if this member does not lead and knows one.
    fn target(&self, hint: Option<u64>) -> Target {
        let progress = &self.inner.progress;
        let known = hint.or_else(|| progress.leader().filter(|_| !progress.is_leader()));
        match known {
            Some(leader) if leader != self.inner.me => Target::Leader(leader),
            _ => Target::Local,
        }
    }

    /// One attempt at the local replica.
    async fn ask_local(&self, msg: StationMsg, key: (u64, u64), wait: Duration) -> Forwardee {
        let inner = &self.inner;
        if inner.progress.fatal().is_some() {
            return Err(Unanswered::Stopped);
        }
        let answer = lock(&inner.routes).wait_for(key);
        let exchange = async {
            inner.to_replica.send(msg).await.map_err(|_| Unanswered::Stopped)?;
            answer.await.map_err(|_| Unanswered::Stopped)
        };
        let result = tokio::time::timeout(wait, exchange).await.unwrap_or(Err(Unanswered::Timeout));
        if result.is_err() {
            lock(&inner.routes).forget(key);
        }
        result
    }

    fn next_read_seq(&self) -> u64 {
        self.inner.read_seq.fetch_add(1, Ordering::Relaxed)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.request_timeout
    }

    async fn store_request(&self, request: Request, serializable: bool) -> Result<Response, BackendError> {
        let serializable = serializable && matches!(request, Request::Range(_) | Request::LeaseLeases);
        let reads = matches!(request, Request::Range(_) | Request::LeaseTimeToLive(_));
        let session = if reads {
            (self.inner.read_client, self.next_read_seq())
        } else {
            self.inner.metrics.proposals.inc();
            self.inner.sessions.lock().expect("never poisoned").take()
        };
        let (client, seq) = session;
        let forwarded = Forwarded::Request(ClientRequest { client, seq, request });
        let result = self.execute(forwarded, serializable, self.deadline()).await;
        if !reads {
            self.inner.sessions.lock().expect("never poisoned").give_back(session);
            if result.is_err() {
                self.inner.metrics.proposals_failed.inc();
            }
        }
        match result? {
            Answer::Reply(Ok(response)) => Ok(response),
            // Only a confused peer answers a request with something else.
            _ => Err(BackendError::Timeout),
        }
    }

    /// Applies `op` to the member table through the leader, once.
    async fn member_change(&self, op: MemberOp) -> Result<MemberAnswer, BackendError> {
        let Ok(_permit) = self.inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let session = self.inner.sessions.lock().expect("never poisoned").take();
        let (client, seq) = session;
        let forwarded = Forwarded::Member(MemberRequest { client, seq, op });
        let result = self.execute(forwarded, false, self.deadline()).await;
        self.inner.sessions.lock().expect("never poisoned").give_back(session);
        match result? {
            Answer::Member(Ok(answer)) => Ok(answer),
            _ => Err(BackendError::Timeout),
        }
    }

    /// Announces where this member serves clients, for the others to forward to.
    pub(crate) async fn publish(&self, client_url: String) -> Result<(), BackendError> {
        self.member_change(MemberOp::Publish { id: self.inner.me, client_url }).await.map(|_| ())
    }

    /// The new member list, learners as the configuration in force says;
    /// a member just added is a learner until the leader promotes it.
    fn listed(&self, answer: &MemberAnswer) -> Vec<Member> {
        let roster = &self.inner.roster;
        let learner = |id: u64, voter: bool| !voter || roster.is_learner(id);
        answer.members.iter().map(|m| roster.member(m, learner(m.id, m.voter))).collect()
    }
}

/// The replica message for one attempt of `request`.
fn msg_of(request: &Forwarded, serializable: bool) -> StationMsg {
    match request {
        Forwarded::Request(r) if serializable => StationMsg::SerializableRead(r.clone()),
        Forwarded::Request(r) => StationMsg::Request(r.clone()),
        Forwarded::KeepAlive(k) => StationMsg::KeepAlive(k.clone()),
        Forwarded::Member(m) => StationMsg::Member(m.clone()),
        Forwarded::Ha(h) => StationMsg::HaRequest(h.clone()),
    }
}

/// The message asking the local replica to pass `request` to its leader,
/// for the requests replicas relay.
fn relay_of(request: &Forwarded) -> Option<StationMsg> {
    match request {
        Forwarded::Request(r) => Some(StationMsg::Relay(Relayed::Request(r.clone()))),
        Forwarded::KeepAlive(k) => Some(StationMsg::Relay(Relayed::KeepAlive(k.clone()))),
        Forwarded::Member(_) | Forwarded::Ha(_) => None,
    }
}

/// etcd's answer for a member table change the table refused.
fn member_error(error: &MemberError) -> BackendError {
    match error {
        MemberError::NotFound { .. } => BackendError::MemberNotFound,
        MemberError::PeerAddrExists { .. } => BackendError::PeerUrlExists,
        MemberError::NotLearner { .. } => BackendError::MemberNotLearner,
        MemberError::NotCaughtUp { .. } => BackendError::LearnerNotReady,
        MemberError::NotSeeded => BackendError::NoLeader,
        MemberError::LastVoter { .. } | MemberError::TooMany { .. } | MemberError::TooLong { .. } => {
            BackendError::MemberRefused(error.to_string())
        }
    }
}

/// `http://IP:port`, the only form of peer URL a member listens on.
fn peer_addr_of(peer_urls: &[String]) -> Result<String, BackendError> {
    let bad = |url: &str| BackendError::InvalidPeerUrl(format!("{url:?}: give one peer URL, http://IP:port"));
    let [url] = peer_urls else { return Err(bad(&peer_urls.join(","))) };
    let addr = url.strip_prefix("http://").map(|rest| rest.trim_end_matches('/'));
    match addr.map(str::parse::<std::net::SocketAddr>) {
        Some(Ok(addr)) => Ok(addr.to_string()),
        _ => Err(bad(url)),
    }
}

impl Backend for StationHandle {
    fn identity(&self) -> Identity {
        let inner = &self.inner;
        Identity { cluster_id: inner.roster.cluster_id(), member_id: inner.me, raft_term: inner.progress.term() }
    }

    fn revision(&self) -> u64 {
        self.inner.progress.revision()
    }

    async fn request(&self, request: Request, serializable: bool) -> Result<Response, BackendError> {
        let Ok(_permit) = self.inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let started = Instant::now();
        let result = self.store_request(request, serializable).await;
        self.inner.metrics.request_seconds.observe(started.elapsed().as_secs_f64());
        result
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<i64, BackendError> {
        let Ok(_permit) = self.inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let request = KeepAliveRequest { client: self.inner.read_client, seq: self.next_read_seq(), lease };
        match self.execute(Forwarded::KeepAlive(request), false, self.deadline()).await? {
            Answer::KeepAlive(Ok(ttl)) => Ok(ttl),
            _ => Err(BackendError::Timeout),
        }
    }

    async fn watch(&self, create: WatchCreate) -> Result<mpsc::Receiver<WatchUpdate>, BackendError> {
        let inner = &self.inner;
        if inner.progress.fatal().is_some() {
            return Err(BackendError::Stopped);
        }
        let watch = inner.watch_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(WATCH_QUEUE_LEN_MAX);
        lock(&inner.routes).open_watch(watch, tx, inner.watches_len_max)?;
        let WatchCreate { key, range_end, start_revision, prev_kv, .. } = create;
        let client = inner.watch_client;
        let msg = haven_station::WatchCreate { client, watch, key, range_end, start_revision, prev_kv };
        let sent = tokio::time::timeout(inner.request_timeout, inner.to_replica.send(StationMsg::Watch(msg))).await;
        if !matches!(sent, Ok(Ok(()))) {
            lock(&inner.routes).close_watch(watch);
            return Err(if sent.is_err() { BackendError::Timeout } else { BackendError::Stopped });
        }
        Ok(rx)
    }

    async fn member_list(&self) -> Result<Vec<Member>, BackendError> {
        Ok(self.inner.roster.members())
    }

    /// The member joins as a learner; unless `is_learner`, the leader
    /// promotes it once its log has caught up (etcd adds a voter at once,
    /// which costs availability while the newcomer is behind).
    async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>), BackendError> {
        let peer_addr = peer_addr_of(&peer_urls)?;
        let answer = self.member_change(MemberOp::Add { peer_addr, voter: !is_learner }).await?;
        let added = answer.member.as_ref().ok_or(BackendError::Timeout)?;
        Ok((self.inner.roster.member(added, true), self.listed(&answer)))
    }

    /// Removes the member from the table, then waits (up to half the
    /// request timeout) until Raft's configuration no longer counts it, as etcd
    /// answers once the change is applied: an operator who stops the member
    /// on this answer must not cost the others their quorum.
    async fn member_remove(&self, id: u64) -> Result<Vec<Member>, BackendError> {
        let answer = self.member_change(MemberOp::Remove { id }).await?;
        let deadline = self.config_wait_deadline();
        if !self.inner.roster.wait_gone(id, deadline).await {
            tracing::warn!(
                member = id,
                "removed from the table, but Raft's configuration still counts it; wait before stopping it"
            );
        }
        Ok(self.listed(&answer))
    }

    /// Marks the learner to vote, then waits (up to half the request timeout)
    /// for the leader to promote it, which it does once the learner's log
    /// has caught up; a learner still behind is listed as one, and will be
    /// promoted later without another request.
    async fn member_promote(&self, id: u64) -> Result<Vec<Member>, BackendError> {
        let answer = self.member_change(MemberOp::Promote { id }).await?;
        let deadline = self.config_wait_deadline();
        self.inner.roster.wait_voter(id, deadline).await;
        Ok(self.listed(&answer))
    }

    async fn status(&self) -> Result<Status, BackendError> {
        let p = self.inner.progress.snapshot();
        Ok(Status {
            version: API_VERSION.to_owned(),
            db_size_bytes: p.store_bytes,
            leader: p.leader.unwrap_or(0),
            raft_index: p.commit,
            raft_term: p.term,
            raft_applied_index: p.applied,
            is_learner: self.inner.roster.is_learner(self.inner.me),
            errors: self.status_errors(p.leader.is_none(), p.fatal),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_url_is_one_http_ip_and_port() {
        assert_eq!(peer_addr_of(&["http://127.0.0.1:2680/".into()]), Ok("127.0.0.1:2680".into()));
        for bad in
            [vec![], vec!["https://127.0.0.1:1".into()], vec!["http://host:1".into()], vec!["a".into(), "b".into()]]
        {
            let error = peer_addr_of(&bad).unwrap_err().to_string();
            assert!(error.contains("http://IP:port"), "{bad:?}: {error}");
        }
    }
}
