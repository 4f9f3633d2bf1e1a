//! Backups through [`StationHandle`] (`GET /haven/v1/snapshot`).
//!
//! In: an operator's request for a backup. Out: the local replica's answer
//! (`haven_station`'s `backups.rs`): a snapshot covering every write
//! committed when it was asked, if this member leads; otherwise the
//! leader's client URL, for the caller to ask there. The snapshot is not
//! relayed: it may be far larger than any message between members.

use super::StationHandle;
use crate::routes::Answer;
use haven_gateway::BackendError;
use haven_station::{BackupImage, ReplyError, StationMsg};
use std::time::Duration;

/// Why this member gave no backup.
#[derive(Debug)]
pub enum BackupRefused {
    /// Ask the leader (its client URL, when this member knows it).
    NotLeader { leader_url: Option<String> },
    /// No answer in time, too busy, or the replica stopped.
    Backend(BackendError),
    /// An answer of another kind: a bug, reported rather than hidden.
    Unexpected(String),
}

impl StationHandle {
    /// A backup from this member's replica, waiting at most `wait` (a
    /// snapshot of a large store is written over many turns).
    pub async fn backup(&self, wait: Duration) -> Result<BackupImage, BackupRefused> {
        let answer = self.ask_replica(wait, |client, seq| StationMsg::BackupQuery { client, seq }).await;
        match answer.map_err(BackupRefused::Backend)? {
            Answer::Backup(Ok(image)) => Ok(image),
            Answer::Backup(Err(ReplyError::NotLeader { leader_hint })) => {
                let leader_url = leader_hint.and_then(|id| self.inner.roster.client_url(id.0));
                Err(BackupRefused::NotLeader { leader_url })
            }
            Answer::Backup(Err(ReplyError::Busy)) => Err(BackupRefused::Backend(BackendError::TooManyRequests)),
            other => Err(BackupRefused::Unexpected(format!("{other:?}"))),
        }
    }
}
