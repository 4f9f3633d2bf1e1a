//! The operator's side of the HA state through [`StationHandle`].
//!
//! In: an operator action (add, remove, enable, disable, move a service;
//! drain, undrain a node), or a request for the current state. Out: the id
//! of the queued event once the leader appended it to the replicated
//! queue, or this member's replica's applied state (serializable: it may
//! lag the leader by the time it takes to apply the latest entries, and
//! `recent_ha_view`'s by a stated age more).
//!
//! An action is retried on "not leader" and "busy" until the request
//! timeout, like a store write, with a session of its own from the pool so
//! that concurrent actions never share one. Actions are queued at least
//! once: a retry after a lost answer may queue one twice, which the
//! coordinator treats as the idempotent repeat it is.

use super::{RecentView, StationHandle};
use crate::forward::{Forwarded, Unanswered};
use crate::routes::Answer;
use haven_gateway::BackendError;
use haven_ha::{Event, OperatorAction};
use haven_station::{HaReport, HaRequest, HaView, StationMsg};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a copy of the applied state serves while no entry is applied.
const QUIET_VIEW_AGE_MAX: Duration = Duration::from_secs(1);

impl StationHandle {
    /// Queues `action` through the leader; the event's id in the queue.
    pub async fn ha_request(&self, action: OperatorAction) -> Result<u64, BackendError> {
        let inner = &self.inner;
        let Ok(_permit) = inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let session = inner.sessions.lock().expect("never poisoned").take();
        let (client, seq) = session;
        let report = HaReport::Event(Event::Operator(action));
        let result = self.execute(Forwarded::Ha(HaRequest { client, seq, report }), false, self.deadline()).await;
        inner.sessions.lock().expect("never poisoned").give_back(session);
        match result? {
            Answer::Ha(Ok(id)) => Ok(id),
            _ => Err(BackendError::Timeout),
        }
    }

    /// This member's applied HA state, as fetched at most `age_max` ago, or
    /// up to a second ago if the replica has applied no entry since:
    /// however many followers of the decision log ask, the replica copies
    /// its graph for
    /// them at most once per `age_max`, and once a second while nothing is
    /// applied. (Not never: a snapshot installed from the leader moves the
    /// state without an applied entry being reported.)
    pub async fn recent_ha_view(&self, age_max: Duration) -> Result<Arc<HaView>, BackendError> {
        let mut recent = self.inner.recent_view.lock().await;
        let applied = self.inner.progress.applied();
        let fresh = |r: &&RecentView| {
            let age = r.at.elapsed();
            age < age_max || (r.applied == applied && age < QUIET_VIEW_AGE_MAX)
        };
        if let Some(r) = recent.as_ref().filter(fresh) {
            return Ok(r.view.clone());
        }
        let view = Arc::new(self.ha_view().await?);
        *recent = Some(RecentView { at: Instant::now(), applied, view: view.clone() });
        Ok(view)
    }

    /// This member's applied HA state: the graph with its decision log.
    pub async fn ha_view(&self) -> Result<HaView, BackendError> {
        let wait = self.inner.request_timeout;
        match self.ask_replica(wait, |client, seq| StationMsg::HaQuery { client, seq }).await? {
            Answer::HaView(view) => Ok(*view),
            _ => Err(BackendError::Timeout),
        }
    }

    /// Asks the local replica something only it answers (`make` builds the
    /// message from the key its answer will carry), waiting at most `wait`:
    /// its answer, or why there is none.
    pub(crate) async fn ask_replica(
        &self,
        wait: Duration,
        make: impl FnOnce(u64, u64) -> StationMsg,
    ) -> Result<Answer, BackendError> {
        let inner = &self.inner;
        let Ok(_permit) = inner.permits.try_acquire() else { return Err(BackendError::TooManyRequests) };
        let key = (inner.read_client, self.next_read_seq());
        match self.ask_local(make(key.0, key.1), key, wait).await {
            Ok(answer) => Ok(answer),
            Err(Unanswered::Timeout) => Err(BackendError::Timeout),
            Err(Unanswered::TooManyRequests) => Err(BackendError::TooManyRequests),
            Err(Unanswered::Stopped) => Err(BackendError::Stopped),
        }
    }
}
