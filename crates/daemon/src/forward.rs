//! Requests a follower hands to the leader.
//!
//! In: a request this member's replica cannot serve (a write, a
//! linearizable read, a keep-alive, an operator's HA action) and the leader's id. Out: the leader
//! replica's own answer, fetched over HTTP from the leader's client URL,
//! or why there is none.
//!
//! The request travels as the replica message it is (postcard), with its
//! (client, seq) session unchanged, so a retry through another member is
//! still applied at most once. The leader serves it through its own replica
//! only: one hop, never forwarded again; a leader that lost its role
//! answers `NotLeader` with its hint and the sender tries again.

use crate::roster::Roster;
use crate::routes::Answer;
use haven_station::{ClientRequest, HaRequest, KeepAliveRequest, MemberRequest};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The path the leader serves forwarded requests on.
pub const FORWARD_PATH: &str = "/haven/v1/forward";
/// Header telling the leader how long the sender waits, in milliseconds.
pub(crate) const WAIT_HEADER: &str = "x-haven-wait-ms";
/// Time the HTTP exchange itself may add to the leader's wait.
const TRANSPORT_SLACK: Duration = Duration::from_millis(500);

/// A request forwarded to the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Forwarded {
    Request(ClientRequest),
    KeepAlive(KeepAliveRequest),
    Member(MemberRequest),
    /// An operator's action for the coordinator, answered once queued.
    Ha(HaRequest),
}

impl Forwarded {
    pub(crate) fn key(&self) -> (u64, u64) {
        match self {
            Forwarded::Request(r) => (r.client, r.seq),
            Forwarded::KeepAlive(k) => (k.client, k.seq),
            Forwarded::Member(m) => (m.client, m.seq),
            Forwarded::Ha(h) => (h.client, h.seq),
        }
    }
}

/// Why a request got no answer from a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Unanswered {
    /// Nothing came back in time.
    Timeout,
    /// The member serving it has too much in flight.
    TooManyRequests,
    /// The member serving it stopped (or could not be reached).
    Stopped,
}

/// What the leader sends back.
pub(crate) type Forwardee = Result<Answer, Unanswered>;

#[derive(Clone, Debug)]
pub(crate) struct Forwarder {
    http: reqwest::Client,
    /// Every member's client URL, as the member table says now.
    roster: Arc<Roster>,
}

impl Forwarder {
    pub(crate) fn new(roster: Arc<Roster>) -> Forwarder {
        // Keep-alive connections: one TCP handshake per leader, not per request.
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap_or_default();
        Forwarder { http, roster }
    }

    /// Sends `request` to member `leader` and waits at most `wait` for its answer.
    pub(crate) async fn send(&self, leader: u64, request: &Forwarded, wait: Duration) -> Forwardee {
        let Some(url) = self.roster.client_url(leader) else { return Err(Unanswered::Stopped) };
        let body = postcard::to_stdvec(request).expect("replica messages always encode");
        let sent = self
            .http
            .post(format!("{url}{FORWARD_PATH}"))
            .header(WAIT_HEADER, wait.as_millis().to_string())
            .timeout(wait + TRANSPORT_SLACK)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::debug!(leader, status = %response.status(), "forwarding refused");
                return Err(Unanswered::Stopped);
            }
            Err(e) if e.is_timeout() => return Err(Unanswered::Timeout),
            Err(e) => {
                tracing::debug!(leader, error = %e, "forwarding failed");
                return Err(Unanswered::Stopped);
            }
        };
        match response.bytes().await {
            Ok(bytes) => postcard::from_bytes(&bytes).unwrap_or(Err(Unanswered::Stopped)),
            Err(e) if e.is_timeout() => Err(Unanswered::Timeout),
            Err(_) => Err(Unanswered::Stopped),
        }
    }
}
