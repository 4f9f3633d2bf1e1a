//! etcd's cluster membership messages and the client calls that send them.
//!
//! In: peer URLs and member ids. Out: the member added and the new member
//! list, as etcd's `Member` messages.

use crate::client::{Client, Retry};
use crate::error::ClientError;
use crate::json::{int, is_default};
use crate::kv::ResponseHeader;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    #[serde(rename = "ID", with = "int")]
    pub id: u64,
    /// Empty for a member added but not started yet.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "peerURLs", skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberAddRequest {
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "isLearner", skip_serializing_if = "is_default")]
    pub is_learner: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberAddResponse {
    pub header: ResponseHeader,
    pub member: Member,
    pub members: Vec<Member>,
}

/// The request of remove and promote: just the id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberIdRequest {
    #[serde(rename = "ID", with = "int")]
    pub id: u64,
}

/// The answer of list, remove and promote: the (new) member list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberListResponse {
    pub header: ResponseHeader,
    pub members: Vec<Member>,
}

impl Client {
    pub async fn member_list(&self) -> Result<MemberListResponse, ClientError> {
        self.call("/v3/cluster/member/list", &serde_json::json!({}), Retry::Repeatable).await
    }

    pub async fn member_add(&self, request: &MemberAddRequest) -> Result<MemberAddResponse, ClientError> {
        self.call("/v3/cluster/member/add", request, Retry::NotRepeatable).await
    }

    pub async fn member_remove(&self, id: u64) -> Result<MemberListResponse, ClientError> {
        self.call("/v3/cluster/member/remove", &MemberIdRequest { id }, Retry::NotRepeatable).await
    }

    pub async fn member_promote(&self, id: u64) -> Result<MemberListResponse, ClientError> {
        self.call("/v3/cluster/member/promote", &MemberIdRequest { id }, Retry::NotRepeatable).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_etcds_member_add_answer() {
        let text = r#"{"header":{"cluster_id":"1"},"member":{"ID":"13644259998761102652",
            "peerURLs":["http://127.0.0.1:25801"],"isLearner":true},"members":[{"ID":"1","name":"c1",
            "peerURLs":["http://127.0.0.1:25800"],"clientURLs":["http://127.0.0.1:25790"]}]}"#;
        let response: MemberAddResponse = serde_json::from_str(text).unwrap();
        assert_eq!(response.member.id, 13644259998761102652);
        assert!(response.member.is_learner && response.member.name.is_empty());
        assert_eq!(response.members[0].client_urls, vec!["http://127.0.0.1:25790".to_owned()]);
        assert!(!response.members[0].is_learner);
    }
}
