//! A backend over one in-memory store: a single-member "cluster" for tests
//! of the gateway and for a standalone development server.
//!
//! In: the gateway's calls, and tokio's clock for lease deadlines. Out:
//! the store's answers, lease expiry (a background task revokes leases
//! whose deadline passed, as a leader would), and watch streams read from
//! the store's history with backpressure: a slow watcher makes its own
//! reader wait, never loses events. Membership changes are recorded but no
//! member is ever started, so a learner never catches up.

use crate::backend::{Backend, BackendError, Identity, Member, Status, WatchCreate, WatchUpdate};
use crate::memory_watch::WatchReader;
use crate::router::ETCD_VERSION;
use haven_store::{
    KeyRange, LeaseId, LeaseRevokeRequest, Lessor, LessorConfig, LessorError, Request, Response, Revision, Store,
    StoreConfig,
};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The single member's id and its cluster's, fixed.
pub const MEMORY_MEMBER_ID: u64 = 0x4a5e_9f00_0000_0001;
pub const MEMORY_CLUSTER_ID: u64 = 0x4a5e_9f00_c1c1_0001;
const RAFT_TERM: u64 = 1;
/// How often the background task looks for expired leases (etcd: 500 ms).
const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// Updates queued per watch before its reader waits for the client.
const WATCH_QUEUE_LEN_MAX: usize = 16;

#[derive(Clone, Debug)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    state: Mutex<State>,
    /// The store's revision after each change; watch readers wait on it.
    revision: watch::Sender<u64>,
    epoch: tokio::time::Instant,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    lessor: Lessor,
    members: Vec<Member>,
    /// Counts writes, standing in for the Raft index in status answers.
    raft_index: u64,
}

impl MemoryBackend {
    /// A fresh store. Must be called inside a tokio runtime: it spawns the
    /// task that expires leases, which stops when the last clone is dropped.
    pub fn new(config: StoreConfig, client_urls: Vec<String>) -> MemoryBackend {
        let store = Store::new(config);
        let inner = Arc::new(Inner {
            revision: watch::Sender::new(store.revision()),
            epoch: tokio::time::Instant::now(),
            state: Mutex::new(State {
                store,
                lessor: Lessor::new(LessorConfig::default()),
                members: vec![Member {
                    id: MEMORY_MEMBER_ID,
                    name: "haven-memory".to_string(),
                    peer_urls: Vec::new(),
                    client_urls,
                    is_learner: false,
                }],
                raft_index: 1,
            }),
        });
        let now = inner.now();
        inner.lock().lessor.promote(now, Duration::ZERO);
        tokio::spawn(expire_leases(Arc::downgrade(&inner)));
        MemoryBackend { inner }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> haven_runtime::Instant {
        let since = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        haven_runtime::Instant::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Applies one request, keeping the lessor and watchers in step.
    fn apply(&self, state: &mut State, request: &Request) -> Result<Response, BackendError> {
        let before = state.store.revision();
        let mut response = state.store.apply(request)?;
        let now = self.now();
        if let Some((id, ttl)) = response.granted_lease() {
            state.lessor.granted(id, ttl, now);
        }
        match &mut response {
            Response::LeaseRevoke(_) => {
                if let Request::LeaseRevoke(r) = request {
                    state.lessor.revoked(r.id);
                }
            }
            Response::LeaseTimeToLive(t) if t.ttl >= 0 => {
                t.ttl = state.lessor.remaining_ttl_seconds(t.id, now).unwrap_or(t.ttl);
            }
            _ => {}
        }
        if !matches!(request, Request::Range(_) | Request::LeaseTimeToLive(_) | Request::LeaseLeases) {
            state.raft_index += 1;
        }
        if state.store.revision() != before {
            self.revision.send_replace(state.store.revision());
        }
        Ok(response)
    }
}

/// Revokes leases whose deadline passed, as the leader's lessor would.
async fn expire_leases(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(EXPIRY_TICK).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.lock();
        let now = inner.now();
        for id in state.lessor.expired(now) {
            // A lease revoked meanwhile is simply gone already.
            let _ = inner.apply(&mut state, &Request::LeaseRevoke(LeaseRevokeRequest { id }));
        }
    }
}

impl Backend for MemoryBackend {
    fn identity(&self) -> Identity {
        Identity { cluster_id: MEMORY_CLUSTER_ID, member_id: MEMORY_MEMBER_ID, raft_term: RAFT_TERM }
    }

    fn revision(&self) -> u64 {
        *self.inner.revision.borrow()
    }

    async fn request(&self, request: Request, _serializable: bool) -> Result<Response, BackendError> {
        let mut state = self.inner.lock();
        self.inner.apply(&mut state, &request)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<i64, BackendError> {
        let now = self.inner.now();
        match self.inner.lock().lessor.renew(lease, now) {
            Ok(ttl) => Ok(ttl),
            Err(LessorError::NotFound | LessorError::Expired) => Err(haven_store::StoreError::LeaseNotFound.into()),
            Err(LessorError::NotPrimary) => Err(BackendError::NoLeader),
        }
    }

    async fn watch(&self, create: WatchCreate) -> Result<mpsc::Receiver<WatchUpdate>, BackendError> {
        let start = match create.start_revision {
            0 => self.inner.lock().store.revision() + 1,
            rev => rev,
        };
        let (tx, rx) = mpsc::channel(WATCH_QUEUE_LEN_MAX);
        let reader = WatchReader {
            inner: Arc::downgrade(&self.inner),
            range: KeyRange::new(&create.key, &create.range_end),
            next: Revision::start_of(start),
            prev_kv: create.prev_kv,
        };
        tokio::spawn(reader.run(tx, self.inner.revision.subscribe()));
        Ok(rx)
    }

    async fn member_list(&self) -> Result<Vec<Member>, BackendError> {
        Ok(self.inner.lock().members.clone())
    }

    async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>), BackendError> {
        let mut state = self.inner.lock();
        if state.members.iter().any(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u))) {
            return Err(BackendError::PeerUrlExists);
        }
        let id = member_id(&peer_urls, state.raft_index);
        let member = Member { id, name: String::new(), peer_urls, client_urls: Vec::new(), is_learner };
        state.members.push(member.clone());
        // etcd lists members by id.
        state.members.sort_by_key(|m| m.id);
        state.raft_index += 1;
        Ok((member, state.members.clone()))
    }

    async fn member_remove(&self, id: u64) -> Result<Vec<Member>, BackendError> {
        let mut state = self.inner.lock();
        if id == MEMORY_MEMBER_ID {
            // Removing the only member would leave nobody to answer.
            return Err(BackendError::UnhealthyCluster);
        }
        let before = state.members.len();
        state.members.retain(|m| m.id != id);
        if state.members.len() == before {
            return Err(BackendError::MemberNotFound);
        }
        state.raft_index += 1;
        Ok(state.members.clone())
    }

    async fn member_promote(&self, id: u64) -> Result<Vec<Member>, BackendError> {
        let state = self.inner.lock();
        match state.members.iter().find(|m| m.id == id) {
            None => Err(BackendError::MemberNotFound),
            Some(m) if !m.is_learner => Err(BackendError::MemberNotLearner),
            Some(_) => Err(BackendError::LearnerNotReady),
        }
    }

    async fn status(&self) -> Result<Status, BackendError> {
        let state = self.inner.lock();
        Ok(Status {
            version: ETCD_VERSION.to_string(),
            db_size_bytes: state.store.bytes_used(),
            leader: MEMORY_MEMBER_ID,
            raft_index: state.raft_index,
            raft_term: RAFT_TERM,
            raft_applied_index: state.raft_index,
            is_learner: false,
            errors: Vec::new(),
        })
    }
}

/// A member id from its peer URLs and a counter (FNV-1a): stable, never 0.
fn member_id(peer_urls: &[String], salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for byte in peer_urls.iter().flat_map(|u| u.bytes().chain([0])) {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}
