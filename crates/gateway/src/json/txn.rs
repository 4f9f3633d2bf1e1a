//! etcd's transaction messages in JSON: compares, request and response ops
//! (which nest), `TxnRequest` and `TxnResponse`.
//!
//! In: the JSON body of `/v3/kv/txn`, or the store's txn response. Out: the
//! store's txn request, or the JSON etcd writes, where every answer inside
//! carries a header with the revision only and a nested txn's header is
//! empty (etcd never fills it).

use super::JsonError;
use super::fields::{b64, int, is_default, nullable, proto_enum_type};
use super::kv::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, ResponseHeader,
    wire_i64,
};
use haven_store as store;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

proto_enum_type!(CompareResult = "etcdserverpb.Compare_CompareResult" {
    Equal = "EQUAL", Greater = "GREATER", Less = "LESS", NotEqual = "NOT_EQUAL",
});
proto_enum_type!(CompareTarget = "etcdserverpb.Compare_CompareTarget" {
    Version = "VERSION", Create = "CREATE", Mod = "MOD", Value = "VALUE", Lease = "LEASE",
});

/// A oneof member: written whenever set, even to zero, as jsonpb does.
mod opt_int {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        int::serialize(&v.expect("skipped when unset"), s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        int::deserialize::<D, i64>(d).map(Some)
    }
}

mod opt_b64 {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        b64::serialize(v.as_deref().expect("skipped when unset"), s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        b64::deserialize(d).map(Some)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    #[serde(default, with = "super::fields::proto_enum", skip_serializing_if = "is_default")]
    pub result: CompareResult,
    #[serde(default, with = "super::fields::proto_enum", skip_serializing_if = "is_default")]
    pub target: CompareTarget,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, with = "opt_int", skip_serializing_if = "Option::is_none", alias = "createRevision")]
    pub create_revision: Option<i64>,
    #[serde(default, with = "opt_int", skip_serializing_if = "Option::is_none", alias = "modRevision")]
    pub mod_revision: Option<i64>,
    #[serde(default, with = "opt_b64", skip_serializing_if = "Option::is_none")]
    pub value: Option<Vec<u8>>,
    #[serde(default, with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub lease: Option<i64>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
}

impl From<&Compare> for store::Compare {
    /// A missing operand compares with zero (or the empty value).
    fn from(c: &Compare) -> store::Compare {
        let n = |v: Option<i64>| super::kv::store_u64(v.unwrap_or(0));
        let target = match c.target {
            CompareTarget::Version => store::CompareTarget::Version(n(c.version)),
            CompareTarget::Create => store::CompareTarget::Create(n(c.create_revision)),
            CompareTarget::Mod => store::CompareTarget::Mod(n(c.mod_revision)),
            CompareTarget::Value => store::CompareTarget::Value(c.value.clone().unwrap_or_default()),
            CompareTarget::Lease => store::CompareTarget::Lease(c.lease.unwrap_or(0)),
        };
        let result = match c.result {
            CompareResult::Equal => store::CompareResult::Equal,
            CompareResult::Greater => store::CompareResult::Greater,
            CompareResult::Less => store::CompareResult::Less,
            CompareResult::NotEqual => store::CompareResult::NotEqual,
        };
        store::Compare { result, target, key: c.key.clone(), range_end: c.range_end.clone() }
    }
}

impl From<&store::Compare> for Compare {
    fn from(c: &store::Compare) -> Compare {
        let result = match c.result {
            store::CompareResult::Equal => CompareResult::Equal,
            store::CompareResult::Greater => CompareResult::Greater,
            store::CompareResult::Less => CompareResult::Less,
            store::CompareResult::NotEqual => CompareResult::NotEqual,
        };
        let mut out = Compare { result, key: c.key.clone(), range_end: c.range_end.clone(), ..Compare::default() };
        match &c.target {
            store::CompareTarget::Version(v) => {
                (out.target, out.version) = (CompareTarget::Version, Some(wire_i64(*v)))
            }
            store::CompareTarget::Create(v) => {
                (out.target, out.create_revision) = (CompareTarget::Create, Some(wire_i64(*v)))
            }
            store::CompareTarget::Mod(v) => (out.target, out.mod_revision) = (CompareTarget::Mod, Some(wire_i64(*v))),
            store::CompareTarget::Value(v) => (out.target, out.value) = (CompareTarget::Value, Some(v.clone())),
            store::CompareTarget::Lease(v) => (out.target, out.lease) = (CompareTarget::Lease, Some(*v)),
        }
        out
    }
}

/// etcd's `RequestOp`: exactly one member should be set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOp {
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "requestRange")]
    pub request_range: Option<RangeRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "requestPut")]
    pub request_put: Option<PutRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "requestDeleteRange")]
    pub request_delete_range: Option<DeleteRangeRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "requestTxn")]
    pub request_txn: Option<TxnRequest>,
}

impl TryFrom<&RequestOp> for store::RequestOp {
    type Error = JsonError;

    fn try_from(op: &RequestOp) -> Result<store::RequestOp, JsonError> {
        match op {
            RequestOp { request_range: Some(r), .. } => Ok(store::RequestOp::Range(r.into())),
            RequestOp { request_put: Some(p), .. } => Ok(store::RequestOp::Put(p.clone().into())),
            RequestOp { request_delete_range: Some(d), .. } => Ok(store::RequestOp::DeleteRange(d.into())),
            RequestOp { request_txn: Some(t), .. } => Ok(store::RequestOp::Txn(t.try_into()?)),
            _ => Err(JsonError::new(
                "a txn op sets none of request_range, request_put, request_delete_range, request_txn",
            )),
        }
    }
}

impl From<&store::RequestOp> for RequestOp {
    fn from(op: &store::RequestOp) -> RequestOp {
        match op {
            store::RequestOp::Range(r) => RequestOp { request_range: Some(r.into()), ..RequestOp::default() },
            store::RequestOp::Put(p) => RequestOp { request_put: Some(p.into()), ..RequestOp::default() },
            store::RequestOp::DeleteRange(d) => {
                RequestOp { request_delete_range: Some(d.into()), ..RequestOp::default() }
            }
            store::RequestOp::Txn(t) => RequestOp { request_txn: Some(t.into()), ..RequestOp::default() },
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub compare: Vec<Compare>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub success: Vec<RequestOp>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    /// Whether the txn only reads, every range of it serializable: etcd
    /// then serves it from the local member like a serializable range.
    pub(crate) fn is_serializable(&self) -> bool {
        let ops = || self.success.iter().chain(&self.failure);
        ops().all(|op| match op {
            RequestOp { request_range: Some(r), .. } => r.serializable,
            RequestOp { request_txn: Some(t), .. } => t.is_serializable(),
            _ => false,
        })
    }
}

impl TryFrom<&TxnRequest> for store::TxnRequest {
    type Error = JsonError;

    fn try_from(t: &TxnRequest) -> Result<store::TxnRequest, JsonError> {
        let ops = |list: &[RequestOp]| list.iter().map(store::RequestOp::try_from).collect::<Result<Vec<_>, _>>();
        Ok(store::TxnRequest {
            compare: t.compare.iter().map(store::Compare::from).collect(),
            success: ops(&t.success)?,
            failure: ops(&t.failure)?,
        })
    }
}

impl From<&store::TxnRequest> for TxnRequest {
    fn from(t: &store::TxnRequest) -> TxnRequest {
        TxnRequest {
            compare: t.compare.iter().map(Compare::from).collect(),
            success: t.success.iter().map(RequestOp::from).collect(),
            failure: t.failure.iter().map(RequestOp::from).collect(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseOp {
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "responseRange")]
    pub response_range: Option<RangeResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "responsePut")]
    pub response_put: Option<PutResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "responseDeleteRange")]
    pub response_delete_range: Option<DeleteRangeResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "responseTxn")]
    pub response_txn: Option<TxnResponse>,
}

impl From<&store::ResponseOp> for ResponseOp {
    fn from(op: &store::ResponseOp) -> ResponseOp {
        let none = ResponseOp::default();
        match op {
            store::ResponseOp::Range(r) => ResponseOp {
                response_range: Some(RangeResponse::from_store(r, ResponseHeader::inner(r.header.revision))),
                ..none
            },
            store::ResponseOp::Put(p) => ResponseOp {
                response_put: Some(PutResponse::from_store(p, ResponseHeader::inner(p.header.revision))),
                ..none
            },
            store::ResponseOp::DeleteRange(d) => ResponseOp {
                response_delete_range: Some(DeleteRangeResponse::from_store(
                    d,
                    ResponseHeader::inner(d.header.revision),
                )),
                ..none
            },
            store::ResponseOp::Txn(t) => {
                ResponseOp { response_txn: Some(TxnResponse::from_store(t, ResponseHeader::default())), ..none }
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub succeeded: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseOp>,
}

impl TxnResponse {
    pub(crate) fn from_store(t: &store::TxnResponse, header: ResponseHeader) -> TxnResponse {
        TxnResponse { header, succeeded: t.succeeded, responses: t.responses.iter().map(ResponseOp::from).collect() }
    }
}
