//! etcd's watch messages in JSON: the `WatchRequest`s a client streams to
//! `/v3/watch` (create, cancel, progress) and the `WatchResponse`s it gets
//! back, with their events.
//!
//! In: one JSON watch request, or store events. Out: what the watch
//! session acts on, or the JSON etcd writes (a PUT event's type is the
//! default and so omitted; a DELETE's key-value has only key and revision).

use super::fields::{b64, int, is_default, nullable, proto_enum_type};
use super::kv::{KeyValue, ResponseHeader};
use haven_store as store;
use serde::{Deserialize, Serialize};

proto_enum_type!(FilterType = "etcdserverpb.WatchCreateRequest_FilterType" { NoPut = "NOPUT", NoDelete = "NODELETE" });
proto_enum_type!(EventType = "mvccpb.Event_EventType" { Put = "PUT", Delete = "DELETE" });

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "createRequest")]
    pub create_request: Option<WatchCreateRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "cancelRequest")]
    pub cancel_request: Option<WatchCancelRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "progressRequest")]
    pub progress_request: Option<WatchProgressRequest>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCreateRequest {
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "startRevision")]
    pub start_revision: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "progressNotify")]
    pub progress_notify: bool,
    #[serde(default, with = "super::fields::proto_enum_list", skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterType>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default", alias = "prevKv")]
    pub prev_kv: bool,
    /// 0 lets the server choose (etcd's `AutoWatchID`).
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "watchId")]
    pub watch_id: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub fragment: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCancelRequest {
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "watchId")]
    pub watch_id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchProgressRequest {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type", default, with = "super::fields::proto_enum", skip_serializing_if = "is_default")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KeyValue>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "prevKv")]
    pub prev_kv: Option<KeyValue>,
}

impl From<&store::Event> for Event {
    fn from(e: &store::Event) -> Event {
        Event {
            kind: match e.kind {
                store::EventKind::Put => EventType::Put,
                store::EventKind::Delete => EventType::Delete,
            },
            kv: Some(KeyValue::from(&e.kv)),
            prev_kv: e.prev_kv.as_ref().map(KeyValue::from),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "watchId")]
    pub watch_id: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub created: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub canceled: bool,
    #[serde(default, with = "int", skip_serializing_if = "is_default", alias = "compactRevision")]
    pub compact_revision: i64,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty", alias = "cancelReason")]
    pub cancel_reason: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub fragment: bool,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}
