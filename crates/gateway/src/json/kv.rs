//! etcd's key-value messages in JSON: the response header, `KeyValue`,
//! range, put, delete-range and compaction requests and responses.
//!
//! In: JSON bodies of `/v3/kv/*` requests, or store responses. Out: store
//! requests, or the JSON etcd writes, defaults omitted as etcd omits them.

use super::fields::{b64, int, is_default, nullable, proto_enum_type};
use crate::backend::Identity;
use haven_store as store;
use serde::{Deserialize, Serialize};

/// A revision or count from the store, as etcd's int64.
pub(crate) fn wire_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An int64 from a client where etcd treats anything below 1 as "unset".
pub(crate) fn store_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseHeader {
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub cluster_id: u64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub member_id: u64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub raft_term: u64,
}

impl ResponseHeader {
    /// The header of a top-level answer; `revision` 0 is omitted, as etcd
    /// does for answers that do not come from the store (members).
    pub fn new(id: &Identity, revision: u64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: id.cluster_id,
            member_id: id.member_id,
            revision: wire_i64(revision),
            raft_term: id.raft_term,
        }
    }

    /// The header etcd puts on each answer inside a txn: the revision only.
    pub(crate) fn inner(revision: u64) -> ResponseHeader {
        ResponseHeader { revision: wire_i64(revision), ..ResponseHeader::default() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "createRevision")]
    pub create_revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "modRevision")]
    pub mod_revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub version: i64,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<u8>,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub lease: i64,
}

impl From<&store::KeyValue> for KeyValue {
    fn from(kv: &store::KeyValue) -> KeyValue {
        KeyValue {
            key: kv.key.clone(),
            create_revision: wire_i64(kv.create_revision),
            mod_revision: wire_i64(kv.mod_revision),
            version: wire_i64(kv.version),
            value: kv.value.clone(),
            lease: kv.lease,
        }
    }
}

impl From<&KeyValue> for store::KeyValue {
    fn from(kv: &KeyValue) -> store::KeyValue {
        store::KeyValue {
            key: kv.key.clone(),
            create_revision: store_u64(kv.create_revision),
            mod_revision: store_u64(kv.mod_revision),
            version: store_u64(kv.version),
            value: kv.value.clone(),
            lease: kv.lease,
        }
    }
}

proto_enum_type!(SortOrder = "etcdserverpb.RangeRequest_SortOrder" { None = "NONE", Ascend = "ASCEND", Descend = "DESCEND" });
proto_enum_type!(SortTarget = "etcdserverpb.RangeRequest_SortTarget" {
    Key = "KEY", Version = "VERSION", Create = "CREATE", Mod = "MOD", Value = "VALUE",
});

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub limit: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub revision: i64,
    #[serde(default, with = "super::fields::proto_enum", skip_serializing_if = "is_default", alias = "sortOrder")]
    pub sort_order: SortOrder,
    #[serde(default, with = "super::fields::proto_enum", skip_serializing_if = "is_default", alias = "sortTarget")]
    pub sort_target: SortTarget,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub serializable: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "keysOnly")]
    pub keys_only: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "countOnly")]
    pub count_only: bool,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "minModRevision")]
    pub min_mod_revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "maxModRevision")]
    pub max_mod_revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "minCreateRevision")]
    pub min_create_revision: i64,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "maxCreateRevision")]
    pub max_create_revision: i64,
}

impl From<&RangeRequest> for store::RangeRequest {
    fn from(r: &RangeRequest) -> store::RangeRequest {
        store::RangeRequest {
            key: r.key.clone(),
            range_end: r.range_end.clone(),
            limit: store_u64(r.limit),
            revision: store_u64(r.revision),
            sort_order: match r.sort_order {
                SortOrder::None => store::SortOrder::None,
                SortOrder::Ascend => store::SortOrder::Ascend,
                SortOrder::Descend => store::SortOrder::Descend,
            },
            sort_target: match r.sort_target {
                SortTarget::Key => store::SortTarget::Key,
                SortTarget::Version => store::SortTarget::Version,
                SortTarget::Create => store::SortTarget::Create,
                SortTarget::Mod => store::SortTarget::Mod,
                SortTarget::Value => store::SortTarget::Value,
            },
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: store_u64(r.min_mod_revision),
            max_mod_revision: store_u64(r.max_mod_revision),
            min_create_revision: store_u64(r.min_create_revision),
            max_create_revision: store_u64(r.max_create_revision),
        }
    }
}

impl From<&store::RangeRequest> for RangeRequest {
    fn from(r: &store::RangeRequest) -> RangeRequest {
        let order = match r.sort_order {
            store::SortOrder::None => SortOrder::None,
            store::SortOrder::Ascend => SortOrder::Ascend,
            store::SortOrder::Descend => SortOrder::Descend,
        };
        let target = match r.sort_target {
            store::SortTarget::Key => SortTarget::Key,
            store::SortTarget::Version => SortTarget::Version,
            store::SortTarget::Create => SortTarget::Create,
            store::SortTarget::Mod => SortTarget::Mod,
            store::SortTarget::Value => SortTarget::Value,
        };
        RangeRequest {
            key: r.key.clone(),
            range_end: r.range_end.clone(),
            limit: wire_i64(r.limit),
            revision: wire_i64(r.revision),
            sort_order: order,
            sort_target: target,
            serializable: false,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: wire_i64(r.min_mod_revision),
            max_mod_revision: wire_i64(r.max_mod_revision),
            min_create_revision: wire_i64(r.min_create_revision),
            max_create_revision: wire_i64(r.max_create_revision),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub kvs: Vec<KeyValue>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub more: bool,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub count: i64,
}

impl RangeResponse {
    pub(crate) fn from_store(r: &store::RangeResponse, header: ResponseHeader) -> RangeResponse {
        RangeResponse {
            header,
            kvs: r.kvs.iter().map(KeyValue::from).collect(),
            more: r.more,
            count: wire_i64(r.count),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<u8>,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub lease: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "prevKv")]
    pub prev_kv: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "ignoreValue")]
    pub ignore_value: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "ignoreLease")]
    pub ignore_lease: bool,
}

/// By value: the decoded key and value move into the store's request.
impl From<PutRequest> for store::PutRequest {
    fn from(p: PutRequest) -> store::PutRequest {
        store::PutRequest {
            key: p.key,
            value: p.value,
            lease: p.lease,
            prev_kv: p.prev_kv,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
        }
    }
}

impl From<&store::PutRequest> for PutRequest {
    fn from(p: &store::PutRequest) -> PutRequest {
        PutRequest {
            key: p.key.clone(),
            value: p.value.clone(),
            lease: p.lease,
            prev_kv: p.prev_kv,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

impl PutResponse {
    pub(crate) fn from_store(r: &store::PutResponse, header: ResponseHeader) -> PutResponse {
        PutResponse { header, prev_kv: r.prev_kv.as_ref().map(KeyValue::from) }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "prevKv")]
    pub prev_kv: bool,
}

impl From<&DeleteRangeRequest> for store::DeleteRangeRequest {
    fn from(d: &DeleteRangeRequest) -> store::DeleteRangeRequest {
        store::DeleteRangeRequest { key: d.key.clone(), range_end: d.range_end.clone(), prev_kv: d.prev_kv }
    }
}

impl From<&store::DeleteRangeRequest> for DeleteRangeRequest {
    fn from(d: &store::DeleteRangeRequest) -> DeleteRangeRequest {
        DeleteRangeRequest { key: d.key.clone(), range_end: d.range_end.clone(), prev_kv: d.prev_kv }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub deleted: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty", alias = "prevKvs")]
    pub prev_kvs: Vec<KeyValue>,
}

impl DeleteRangeResponse {
    pub(crate) fn from_store(r: &store::DeleteRangeResponse, header: ResponseHeader) -> DeleteRangeResponse {
        DeleteRangeResponse {
            header,
            deleted: wire_i64(r.deleted),
            prev_kvs: r.prev_kvs.iter().map(KeyValue::from).collect(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionRequest {
    #[serde(default, with = "int", skip_serializing_if = "is_default")]
    pub revision: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub physical: bool,
}

impl From<&CompactionRequest> for store::CompactionRequest {
    fn from(c: &CompactionRequest) -> store::CompactionRequest {
        store::CompactionRequest { revision: store_u64(c.revision), physical: c.physical }
    }
}

/// Compaction, lease revoke: answers with nothing but the header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderOnly {
    #[serde(default)]
    pub header: ResponseHeader,
}
