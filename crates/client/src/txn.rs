//! etcd's transaction messages: compares, the operations of each branch,
//! and their responses; and the client call that sends them.
//!
//! In: a [`TxnRequest`]. Out: a [`TxnResponse`] saying which branch ran and
//! what each of its operations returned.

use crate::client::{Client, Retry};
use crate::error::ClientError;
use crate::json::{b64, int_opt, is_default};
use crate::kv::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompareResult {
    #[default]
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// What a compare looks at, with the operand it is compared to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    Version(i64),
    CreateRevision(i64),
    ModRevision(i64),
    Value(Vec<u8>),
    Lease(i64),
}

/// One compare of a txn: `target(key) result operand`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "CompareWire", try_from = "CompareWire")]
pub struct Compare {
    pub key: Vec<u8>,
    /// Non-empty: the compare holds for every key in `[key, range_end)`.
    pub range_end: Vec<u8>,
    pub result: CompareResult,
    pub target: CompareTarget,
}

/// The JSON form: the target's name plus exactly one operand field.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct CompareWire {
    result: CompareResult,
    target: String,
    #[serde(with = "b64")]
    key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    range_end: Vec<u8>,
    #[serde(with = "int_opt", skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    #[serde(with = "int_opt", skip_serializing_if = "Option::is_none")]
    create_revision: Option<i64>,
    #[serde(with = "int_opt", skip_serializing_if = "Option::is_none")]
    mod_revision: Option<i64>,
    #[serde(with = "b64_opt", skip_serializing_if = "Option::is_none")]
    value: Option<Vec<u8>>,
    #[serde(with = "int_opt", skip_serializing_if = "Option::is_none")]
    lease: Option<i64>,
}

mod b64_opt {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        crate::json::b64::serialize(bytes.as_deref().unwrap_or_default(), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        crate::json::b64::deserialize(deserializer).map(Some)
    }
}

impl From<Compare> for CompareWire {
    fn from(compare: Compare) -> Self {
        let mut wire =
            CompareWire { result: compare.result, key: compare.key, range_end: compare.range_end, ..Self::default() };
        let name = match compare.target {
            CompareTarget::Version(v) => {
                wire.version = Some(v);
                "VERSION"
            }
            CompareTarget::CreateRevision(v) => {
                wire.create_revision = Some(v);
                "CREATE"
            }
            CompareTarget::ModRevision(v) => {
                wire.mod_revision = Some(v);
                "MOD"
            }
            CompareTarget::Value(v) => {
                wire.value = Some(v);
                "VALUE"
            }
            CompareTarget::Lease(v) => {
                wire.lease = Some(v);
                "LEASE"
            }
        };
        wire.target = name.to_owned();
        wire
    }
}

impl TryFrom<CompareWire> for Compare {
    type Error = String;

    fn try_from(wire: CompareWire) -> Result<Self, String> {
        // protobuf's JSON mapping omits a zero operand, so a missing one means 0 (or empty).
        let target = match wire.target.as_str() {
            "VERSION" | "" => CompareTarget::Version(wire.version.unwrap_or(0)),
            "CREATE" => CompareTarget::CreateRevision(wire.create_revision.unwrap_or(0)),
            "MOD" => CompareTarget::ModRevision(wire.mod_revision.unwrap_or(0)),
            "VALUE" => CompareTarget::Value(wire.value.unwrap_or_default()),
            "LEASE" => CompareTarget::Lease(wire.lease.unwrap_or(0)),
            other => return Err(format!("unknown compare target `{other}`")),
        };
        Ok(Compare { key: wire.key, range_end: wire.range_end, result: wire.result, target })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    #[serde(rename = "request_range")]
    Range(RangeRequest),
    #[serde(rename = "request_put")]
    Put(PutRequest),
    #[serde(rename = "request_delete_range")]
    DeleteRange(DeleteRangeRequest),
    #[serde(rename = "request_txn")]
    Txn(TxnRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    #[serde(rename = "response_range")]
    Range(RangeResponse),
    #[serde(rename = "response_put")]
    Put(PutResponse),
    #[serde(rename = "response_delete_range")]
    DeleteRange(DeleteRangeResponse),
    #[serde(rename = "response_txn")]
    Txn(TxnResponse),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<Compare>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<RequestOp>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<RequestOp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxnResponse {
    pub header: ResponseHeader,
    #[serde(skip_serializing_if = "is_default")]
    pub succeeded: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseOp>,
}

impl TxnRequest {
    /// Whether every operation of both branches only reads.
    pub fn is_read_only(&self) -> bool {
        self.success.iter().chain(&self.failure).all(|op| match op {
            RequestOp::Range(_) => true,
            RequestOp::Txn(inner) => inner.is_read_only(),
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
        })
    }
}

impl Client {
    /// A txn that writes is sent again elsewhere only when its first
    /// attempt surely did not reach a server (see [`Retry`]).
    pub async fn txn(&self, request: &TxnRequest) -> Result<TxnResponse, ClientError> {
        let retry = if request.is_read_only() { Retry::Repeatable } else { Retry::NotRepeatable };
        self.call("/v3/kv/txn", request, retry).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_has_etcds_json_shape() {
        let compare = Compare {
            key: b"a".to_vec(),
            range_end: Vec::new(),
            result: CompareResult::NotEqual,
            target: CompareTarget::ModRevision(5),
        };
        let text = serde_json::to_string(&compare).unwrap();
        assert_eq!(text, r#"{"result":"NOT_EQUAL","target":"MOD","key":"YQ==","mod_revision":"5"}"#);
        assert_eq!(serde_json::from_str::<Compare>(&text).unwrap(), compare);
        let zero: Compare = serde_json::from_str(r#"{"target":"VALUE","key":"YQ=="}"#).unwrap();
        assert_eq!((zero.result, zero.target), (CompareResult::Equal, CompareTarget::Value(Vec::new())));
        assert!(serde_json::from_str::<Compare>(r#"{"target":"COLOUR"}"#).is_err());
    }

    #[test]
    fn decodes_etcd_txn_response() {
        let text = r#"{"header":{"revision":"9"},"succeeded":true,"responses":[{"response_put":{"header":
            {"revision":"9"}}},{"response_delete_range":{"header":{"revision":"9"},"deleted":"1"}}]}"#;
        let response: TxnResponse = serde_json::from_str(text).unwrap();
        assert!(response.succeeded);
        assert!(matches!(response.responses[0], ResponseOp::Put(_)));
        match &response.responses[1] {
            ResponseOp::DeleteRange(deleted) => assert_eq!(deleted.deleted, 1),
            other => panic!("expected a delete-range response, got {other:?}"),
        }
    }

    #[test]
    fn read_only_looks_into_both_branches() {
        let range = RequestOp::Range(RangeRequest::default());
        let put = RequestOp::Put(PutRequest::default());
        let mut txn =
            TxnRequest { success: vec![range.clone()], failure: vec![range.clone()], ..TxnRequest::default() };
        assert!(txn.is_read_only());
        txn.failure.push(RequestOp::Txn(TxnRequest { success: vec![put], ..TxnRequest::default() }));
        assert!(!txn.is_read_only());
    }
}
