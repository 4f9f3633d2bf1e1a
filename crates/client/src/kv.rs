//! etcd's KV messages (range, put, delete-range, compaction) and the client
//! calls that send them.
//!
//! In: typed requests. Out: typed responses, decoded from etcd's JSON (see
//! [`crate::json`] for the conventions), or a [`ClientError`].

use crate::client::{Client, Retry};
use crate::error::ClientError;
use crate::json::{b64, int, is_default};
use serde::{Deserialize, Serialize};

/// etcd's `ResponseHeader`. Responses nested in a txn carry only `revision`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResponseHeader {
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub cluster_id: u64,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub member_id: u64,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub revision: i64,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub raft_term: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub create_revision: i64,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub mod_revision: i64,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub version: i64,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub lease: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    /// Empty: the key alone; `[0]`: every key from `key` on; see [`prefix_end`].
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub limit: i64,
    /// 0 means the newest revision.
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub revision: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub serializable: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub keys_only: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub count_only: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RangeResponse {
    pub header: ResponseHeader,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kvs: Vec<KeyValue>,
    #[serde(skip_serializing_if = "is_default")]
    pub more: bool,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PutRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64")]
    pub value: Vec<u8>,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub lease: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PutResponse {
    pub header: ResponseHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteRangeRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    #[serde(skip_serializing_if = "is_default")]
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeleteRangeResponse {
    pub header: ResponseHeader,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub deleted: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactionRequest {
    #[serde(with = "int")]
    pub revision: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub physical: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompactionResponse {
    pub header: ResponseHeader,
}

/// The smallest key above every key that starts with `prefix`, as etcd's
/// `range_end` for a prefix query: the last byte below 0xff incremented,
/// the bytes after it dropped. `[0]` (every key) when there is none, e.g.
/// for the empty prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&byte| byte < 0xff) {
        Some(at) => {
            let mut end = prefix[..=at].to_vec();
            end[at] += 1;
            end
        }
        None => vec![0],
    }
}

impl Client {
    pub async fn range(&self, request: &RangeRequest) -> Result<RangeResponse, ClientError> {
        self.call("/v3/kv/range", request, Retry::Repeatable).await
    }

    pub async fn put(&self, request: &PutRequest) -> Result<PutResponse, ClientError> {
        self.call("/v3/kv/put", request, Retry::NotRepeatable).await
    }

    pub async fn delete_range(&self, request: &DeleteRangeRequest) -> Result<DeleteRangeResponse, ClientError> {
        self.call("/v3/kv/deleterange", request, Retry::NotRepeatable).await
    }

    pub async fn compact(&self, request: &CompactionRequest) -> Result<CompactionResponse, ClientError> {
        self.call("/v3/kv/compaction", request, Retry::NotRepeatable).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"abc"), b"abd".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn decodes_etcd_range_response() {
        let text = r#"{"header":{"cluster_id":"1543700104741564242","member_id":"10608898954038455804",
            "revision":"3","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"3",
            "version":"2","value":"YmF6"}],"count":"1"}"#;
        let response: RangeResponse = serde_json::from_str(text).unwrap();
        assert_eq!(response.header.member_id, 10608898954038455804);
        assert_eq!(response.header.revision, 3);
        assert_eq!(response.kvs[0].key, b"foo");
        assert_eq!(response.kvs[0].value, b"baz");
        assert_eq!((response.kvs[0].create_revision, response.kvs[0].version, response.count), (2, 2, 1));
        assert!(!response.more);
    }

    #[test]
    fn encodes_requests_without_defaults() {
        let request = RangeRequest { key: b"a".to_vec(), range_end: prefix_end(b"a"), ..RangeRequest::default() };
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"key":"YQ==","range_end":"Yg=="}"#);
        let put = PutRequest { key: b"k".to_vec(), value: b"v".to_vec(), lease: 7, prev_kv: false };
        assert_eq!(serde_json::to_string(&put).unwrap(), r#"{"key":"aw==","value":"dg==","lease":"7"}"#);
    }
}
