//! etcd's lease messages and the client calls that send them.
//!
//! In: lease ids and TTLs. Out: typed responses. etcd serves keep-alive as a
//! stream even over JSON, so its one answer comes wrapped in `{"result": …}`;
//! [`Client::lease_keep_alive`] unwraps it and turns etcd's "TTL 0" into
//! [`ClientError::LeaseNotFound`].

use crate::client::{Client, Retry};
use crate::error::ClientError;
use crate::json::{b64_list, int, is_default};
use crate::kv::ResponseHeader;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseGrantRequest {
    #[serde(rename = "TTL", with = "int")]
    pub ttl: i64,
    /// 0 lets the server choose the id.
    #[serde(rename = "ID", with = "int", skip_serializing_if = "is_default")]
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseGrantResponse {
    pub header: ResponseHeader,
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
    #[serde(rename = "TTL", with = "int")]
    pub ttl: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The request of revoke and keep-alive: just the id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseIdRequest {
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseRevokeResponse {
    pub header: ResponseHeader,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseKeepAliveResponse {
    pub header: ResponseHeader,
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
    /// 0 when the lease does not exist (any more).
    #[serde(rename = "TTL", with = "int", skip_serializing_if = "is_default")]
    pub ttl: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseTimeToLiveRequest {
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub keys: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseTimeToLiveResponse {
    pub header: ResponseHeader,
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
    /// Seconds left; -1 when the lease does not exist.
    #[serde(rename = "TTL", with = "int")]
    pub ttl: i64,
    #[serde(rename = "grantedTTL", with = "int", skip_serializing_if = "is_default")]
    pub granted_ttl: i64,
    #[serde(with = "b64_list", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseStatus {
    #[serde(rename = "ID", with = "int")]
    pub id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaseLeasesResponse {
    pub header: ResponseHeader,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseStatus>,
}

/// A streamed answer: `{"result": …}`, or `{"error": …}` if the stream failed.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamItem<T> {
    pub result: Option<T>,
    pub error: Option<serde_json::Value>,
}

impl Client {
    pub async fn lease_grant(&self, request: &LeaseGrantRequest) -> Result<LeaseGrantResponse, ClientError> {
        self.call("/v3/lease/grant", request, Retry::NotRepeatable).await
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<LeaseRevokeResponse, ClientError> {
        self.call("/v3/lease/revoke", &LeaseIdRequest { id }, Retry::NotRepeatable).await
    }

    /// Renews lease `id` once; returns its renewed TTL in seconds.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<LeaseKeepAliveResponse, ClientError> {
        let (endpoint, item): (String, StreamItem<LeaseKeepAliveResponse>) =
            self.call_with_endpoint("/v3/lease/keepalive", &LeaseIdRequest { id }, Retry::Repeatable).await?;
        match (item.result, item.error) {
            (Some(response), _) if response.ttl > 0 => Ok(response),
            (Some(_), _) => Err(ClientError::LeaseNotFound { id }),
            (None, error) => Err(ClientError::from_stream_error(&endpoint, error)),
        }
    }

    pub async fn lease_time_to_live(
        &self,
        request: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ClientError> {
        self.call("/v3/lease/timetolive", request, Retry::Repeatable).await
    }

    pub async fn lease_leases(&self) -> Result<LeaseLeasesResponse, ClientError> {
        self.call("/v3/lease/leases", &serde_json::json!({}), Retry::Repeatable).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_etcds_lease_answers() {
        let ttl: LeaseTimeToLiveResponse =
            serde_json::from_str(r#"{"header":{},"ID":"77","TTL":"4","grantedTTL":"5","keys":["Zm9v"]}"#).unwrap();
        assert_eq!((ttl.id, ttl.ttl, ttl.granted_ttl, ttl.keys), (77, 4, 5, vec![b"foo".to_vec()]));
        let gone: StreamItem<LeaseKeepAliveResponse> =
            serde_json::from_str(r#"{"result":{"header":{"revision":"6"},"ID":"77"}}"#).unwrap();
        assert_eq!(gone.result.map(|r| (r.id, r.ttl)), Some((77, 0)));
        assert_eq!(serde_json::to_string(&LeaseGrantRequest { ttl: 60, id: 0 }).unwrap(), r#"{"TTL":"60"}"#);
    }
}
