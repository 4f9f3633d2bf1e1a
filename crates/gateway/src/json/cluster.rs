//! etcd's cluster and maintenance messages in JSON: members
//! (`/v3/cluster/member/*`) and status (`/v3/maintenance/status`), with
//! etcd's camel-case field names (`peerURLs`, `isLearner`, `dbSize`...).
//!
//! In: JSON bodies of member requests, or the backend's members and
//! status. Out: the JSON etcd writes.

use super::fields::{int, is_default, nullable};
use super::kv::{ResponseHeader, wire_i64};
use crate::backend;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: u64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "peerURLs", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner", default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

impl From<&backend::Member> for Member {
    fn from(m: &backend::Member) -> Member {
        Member {
            id: m.id,
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
            client_urls: m.client_urls.clone(),
            is_learner: m.is_learner,
        }
    }
}

pub(crate) fn members(list: &[backend::Member]) -> Vec<Member> {
    list.iter().map(Member::from).collect()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddRequest {
    #[serde(rename = "peerURLs", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "isLearner", default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

/// The body of member remove and promote requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberIdRequest {
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

/// Member list, remove and promote answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(rename = "dbSize", default, with = "int", skip_serializing_if = "is_default")]
    pub db_size: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub leader: u64,
    #[serde(rename = "raftIndex", default, with = "int", skip_serializing_if = "is_default")]
    pub raft_index: u64,
    #[serde(rename = "raftTerm", default, with = "int", skip_serializing_if = "is_default")]
    pub raft_term: u64,
    #[serde(rename = "raftAppliedIndex", default, with = "int", skip_serializing_if = "is_default")]
    pub raft_applied_index: u64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(rename = "dbSizeInUse", default, with = "int", skip_serializing_if = "is_default")]
    pub db_size_in_use: i64,
    #[serde(rename = "isLearner", default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

impl StatusResponse {
    pub(crate) fn from_backend(s: &backend::Status, header: ResponseHeader) -> StatusResponse {
        StatusResponse {
            header,
            version: s.version.clone(),
            db_size: wire_i64(s.db_size_bytes),
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            errors: s.errors.clone(),
            // Haven's store has no free pages: all of it is in use.
            db_size_in_use: wire_i64(s.db_size_bytes),
            is_learner: s.is_learner,
        }
    }
}
