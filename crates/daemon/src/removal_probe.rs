//! Finding out that this member was removed when nobody tells it.
//!
//! In: the roster (this member's table, its doubts) and progress (whether
//! a leader is known). Out: `Roster::mark_removed` once another member of
//! the same cluster says this member's id was removed, and the
//! `haven_removed` gauge however it learned; `GET
//! /haven/v1/members/{id}/standing`, which answers that question for others.
//!
//! A removed follower may never apply its own removal: the leader stops
//! replicating to it as soon as the configuration without it is appended,
//! and a member restarted after its removal hears from nobody. Without
//! this, it would hold every client request until the request timeout and
//! then answer "no leader". etcd has the others refuse a removed member's
//! Raft traffic with "removed member"; here the removed member asks, over
//! the client API, once a client request found no leader or no leader has
//! been known for two rounds.
//!
//! Asking cannot mislead: ids are never reused, so a table that gave out
//! this id and no longer holds it is, at any point of the log, a table from
//! after this member's removal. That holds for a joiner too, and for a
//! member restarted with nothing applied yet. A member whose table is
//! behind says `unknown`, and the next member is asked.

use crate::handle::StationHandle;
use crate::metrics::Metrics;
use crate::progress::Progress;
use crate::roster::{Roster, Standing};
use axum::Json;
use axum::extract::{Path, State};
use haven_gateway::Backend;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The path a member asks another about its own standing on.
pub const STANDING_PATH: &str = "/haven/v1/members/{id}/standing";
/// How often the probe looks whether a leader is known.
const ROUND_INTERVAL: Duration = Duration::from_secs(1);
/// The least time between two rounds of asking, however many requests doubt.
const ROUND_PAUSE_MIN: Duration = Duration::from_secs(1);
/// How long one member may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(800);

/// What `GET /haven/v1/members/{id}/standing` answers; 64-bit integers as
/// strings, as in etcd's JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingAnswer {
    #[serde(with = "haven_gateway::json::fields::int")]
    pub cluster_id: u64,
    /// The member answering.
    #[serde(with = "haven_gateway::json::fields::int")]
    pub member_id: u64,
    pub standing: Standing,
}

pub(crate) async fn standing(State(handle): State<StationHandle>, Path(id): Path<u64>) -> Json<StandingAnswer> {
    let identity = handle.identity();
    Json(StandingAnswer {
        cluster_id: identity.cluster_id,
        member_id: identity.member_id,
        standing: handle.standing(id),
    })
}

/// Runs until this member knows it was removed (or the station stops),
/// then sets `haven_removed`, whichever way it learned.
pub(crate) async fn watch_for_removal(roster: Arc<Roster>, progress: Arc<Progress>, metrics: Arc<Metrics>, me: u64) {
    let http = reqwest::Client::builder().timeout(ANSWER_TIMEOUT).build().unwrap_or_default();
    let mut leaderless_rounds = 0u32;
    loop {
        let doubted = tokio::select! {
            () = roster.doubted() => true,
            () = tokio::time::sleep(ROUND_INTERVAL) => false,
        };
        leaderless_rounds = if progress.leader().is_some() { 0 } else { leaderless_rounds.saturating_add(1) };
        if roster.removed() {
            metrics.removed.set(1);
            return;
        }
        if !(doubted || leaderless_rounds >= 2) {
            continue;
        }
        if let Some(by) = ask_the_others(&http, &roster, me).await {
            roster.mark_removed(&format!("member {by}'s member table"));
            metrics.removed.set(1);
            return;
        }
        tokio::time::sleep(ROUND_PAUSE_MIN).await;
    }
}

/// Asks each other member with a client URL, in id order, until one of the
/// same cluster knows this member's standing; returns who said "removed".
async fn ask_the_others(http: &reqwest::Client, roster: &Roster, me: u64) -> Option<u64> {
    let cluster_id = roster.cluster_id();
    let others: Vec<(u64, String)> = roster
        .members()
        .into_iter()
        .filter(|m| m.id != me)
        .filter_map(|m| Some((m.id, m.client_urls.first()?.clone())))
        .collect();
    for (id, url) in others {
        let path = STANDING_PATH.replace("{id}", &me.to_string());
        let answer = match http.get(format!("{url}{path}")).send().await {
            Ok(response) if response.status().is_success() => response.json::<StandingAnswer>().await.ok(),
            Ok(_) | Err(_) => None,
        };
        let Some(answer) = answer.filter(|a| a.cluster_id == cluster_id) else {
            tracing::debug!(member = id, "no answer about this member's standing; asking the next");
            continue;
        };
        match answer.standing {
            Standing::Removed => return Some(answer.member_id),
            Standing::Member => return None,
            Standing::Unknown => {}
        }
    }
    None
}
