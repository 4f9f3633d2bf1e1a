//! etcd's watch messages and the streaming client of `POST /v3/watch`.
//!
//! In: a [`WatchCreateRequest`]. Out: a [`Watcher`] that yields each
//! [`WatchResponse`] of the newline-delimited JSON stream as it arrives
//! (the first says `created`; a `canceled` one ends the watch).

use crate::client::Client;
use crate::error::ClientError;
use crate::json::{b64, int, is_default};
use crate::kv::{KeyValue, ResponseHeader};
use crate::lease::StreamItem;
use crate::line_stream::LineStream;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchCreateRequest {
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    #[serde(with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub range_end: Vec<u8>,
    /// 0: from the next write on.
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub start_revision: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub progress_notify: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub prev_kv: bool,
}

#[derive(Serialize)]
struct WatchRequest<'a> {
    create_request: &'a WatchCreateRequest,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    #[default]
    Put,
    Delete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    #[serde(rename = "type", skip_serializing_if = "is_default")]
    pub kind: EventType,
    pub kv: KeyValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchResponse {
    pub header: ResponseHeader,
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub watch_id: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub created: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub canceled: bool,
    /// Set when the watch was canceled because its start revision was compacted.
    #[serde(with = "int", skip_serializing_if = "is_default")]
    pub compact_revision: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cancel_reason: String,
    #[serde(skip_serializing_if = "is_default")]
    pub fragment: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// One open watch stream.
#[derive(Debug)]
pub struct Watcher {
    stream: LineStream,
}

/// A watch answer may hold many events; bound one line anyway.
const WATCH_LINE_BYTES_MAX: usize = 64 << 20;

impl Client {
    /// Opens a watch on the first endpoint that accepts it.
    pub async fn watch(&self, create: &WatchCreateRequest) -> Result<Watcher, ClientError> {
        let (endpoint, response) = self.open_stream("/v3/watch", &WatchRequest { create_request: create }).await?;
        Ok(Watcher { stream: LineStream::new(endpoint, "/v3/watch", response, WATCH_LINE_BYTES_MAX) })
    }
}

impl Watcher {
    /// The endpoint serving this watch.
    pub fn endpoint(&self) -> &str {
        self.stream.endpoint()
    }

    /// The next answer; `None` once the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<WatchResponse>, ClientError> {
        let Some(line) = self.stream.next_line().await? else { return Ok(None) };
        let item: StreamItem<WatchResponse> =
            serde_json::from_slice(&line).map_err(|e| self.stream.protocol(&e.to_string()))?;
        match (item.result, item.error) {
            (Some(response), _) => Ok(Some(response)),
            (None, error) => Err(ClientError::from_stream_error(self.stream.endpoint(), error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_etcds_watch_stream_items() {
        let line = r#"{"result":{"header":{"revision":"12"},"events":[{"type":"DELETE","kv":{"key":"ZA==",
            "mod_revision":"12"},"prev_kv":{"key":"ZA==","create_revision":"11","mod_revision":"11",
            "version":"1","value":"MQ=="}},{"kv":{"key":"ZQ==","mod_revision":"13","value":"Mg=="}}]}}"#;
        let item: StreamItem<WatchResponse> = serde_json::from_str(line).unwrap();
        let response = item.result.unwrap();
        assert_eq!(response.events[0].kind, EventType::Delete);
        assert_eq!(response.events[0].prev_kv.as_ref().map(|kv| kv.value.clone()), Some(b"1".to_vec()));
        assert_eq!(response.events[1].kind, EventType::Put, "etcd omits the default PUT");
        let canceled: StreamItem<WatchResponse> =
            serde_json::from_str(r#"{"result":{"canceled":true,"compact_revision":"5"}}"#).unwrap();
        assert_eq!(canceled.result.map(|r| (r.canceled, r.compact_revision)), Some((true, 5)));
    }

    #[test]
    fn encodes_the_create_request_etcd_expects() {
        let create = WatchCreateRequest { key: b"a".to_vec(), start_revision: 3, prev_kv: true, ..Default::default() };
        let text = serde_json::to_string(&WatchRequest { create_request: &create }).unwrap();
        assert_eq!(text, r#"{"create_request":{"key":"YQ==","start_revision":"3","prev_kv":true}}"#);
    }
}
