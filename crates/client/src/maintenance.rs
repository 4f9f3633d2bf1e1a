//! etcd's maintenance status message and the client call that asks one
//! endpoint for it (status is about a member, so it never fails over).
//!
//! In: an endpoint. Out: its [`StatusResponse`].

use crate::client::Client;
use crate::error::ClientError;
use crate::json::{int, is_default};
use crate::kv::ResponseHeader;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    pub header: ResponseHeader,
    pub version: String,
    #[serde(rename = "dbSize", with = "int", skip_serializing_if = "is_default")]
    pub db_size: i64,
    /// The leader's member id; 0 when this member knows none.
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub leader: u64,
    #[serde(rename = "raftIndex", with = "int", skip_serializing_if = "is_default")]
    pub raft_index: u64,
    #[serde(rename = "raftTerm", with = "int", skip_serializing_if = "is_default")]
    pub raft_term: u64,
    #[serde(rename = "raftAppliedIndex", with = "int", skip_serializing_if = "is_default")]
    pub raft_applied_index: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(rename = "isLearner", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

impl StatusResponse {
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.header.member_id
    }
}

impl Client {
    /// The status of the member behind `endpoint` (one of this client's
    /// endpoints or any other URL), with no failover.
    pub async fn status_of(&self, endpoint: &str) -> Result<StatusResponse, ClientError> {
        self.call_one(endpoint, "/v3/maintenance/status", &serde_json::json!({})).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_etcds_status() {
        let text = r#"{"header":{"member_id":"10608898954038455804","raft_term":"2"},"version":"3.4.23",
            "dbSize":"20480","leader":"10608898954038455804","raftIndex":"8","raftTerm":"2",
            "raftAppliedIndex":"8","dbSizeInUse":"16384"}"#;
        let status: StatusResponse = serde_json::from_str(text).unwrap();
        assert!(status.is_leader());
        assert_eq!((status.raft_index, status.raft_term, status.raft_applied_index), (8, 2, 8));
        let follower = StatusResponse { leader: 5, ..status.clone() };
        assert!(!follower.is_leader());
        assert!(!StatusResponse { leader: 0, ..StatusResponse::default() }.is_leader());
    }
}
