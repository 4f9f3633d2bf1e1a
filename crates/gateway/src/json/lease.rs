//! etcd's lease messages in JSON (`/v3/lease/*`), whose field names are
//! etcd's own upper-case `ID` and `TTL`.
//!
//! In: JSON bodies of lease requests, or store lease responses. Out: store
//! requests, or the JSON etcd writes.

use super::fields::{b64_list, int, is_default, nullable};
use super::kv::ResponseHeader;
use haven_store as store;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantRequest {
    #[serde(rename = "TTL", default, with = "int", skip_serializing_if = "is_default")]
    pub ttl: i64,
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
}

impl From<&LeaseGrantRequest> for store::LeaseGrantRequest {
    fn from(g: &LeaseGrantRequest) -> store::LeaseGrantRequest {
        store::LeaseGrantRequest { ttl: g.ttl, id: g.id }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrantResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
    #[serde(rename = "TTL", default, with = "int", skip_serializing_if = "is_default")]
    pub ttl: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl LeaseGrantResponse {
    pub(crate) fn from_store(g: &store::LeaseGrantResponse, header: ResponseHeader) -> LeaseGrantResponse {
        LeaseGrantResponse { header, id: g.id, ttl: g.ttl, error: String::new() }
    }
}

/// The body of revoke, keep-alive and (with `keys`) time-to-live requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseIdRequest {
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub keys: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseKeepAliveResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
    /// 0 when the lease does not exist (etcd answers so, without an error).
    #[serde(rename = "TTL", default, with = "int", skip_serializing_if = "is_default")]
    pub ttl: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimeToLiveResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
    #[serde(rename = "TTL", default, with = "int", skip_serializing_if = "is_default")]
    pub ttl: i64,
    #[serde(rename = "grantedTTL", default, with = "int", skip_serializing_if = "is_default")]
    pub granted_ttl: i64,
    #[serde(default, with = "b64_list", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Vec<u8>>,
}

impl LeaseTimeToLiveResponse {
    pub(crate) fn from_store(r: &store::LeaseTimeToLiveResponse, header: ResponseHeader) -> LeaseTimeToLiveResponse {
        LeaseTimeToLiveResponse { header, id: r.id, ttl: r.ttl, granted_ttl: r.granted_ttl, keys: r.keys.clone() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    #[serde(rename = "ID", default, with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseLeasesResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseStatus>,
}

impl LeaseLeasesResponse {
    pub(crate) fn from_store(r: &store::LeaseLeasesResponse, header: ResponseHeader) -> LeaseLeasesResponse {
        LeaseLeasesResponse { header, leases: r.leases.iter().map(|&id| LeaseStatus { id }).collect() }
    }
}
