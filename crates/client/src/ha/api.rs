//! The client calls of Haven's `/v1/` API (nodes, services, instances,
//! events), with the same endpoint failover as the etcd calls.
//!
//! In: names, node ids and service definitions. Out: the station's typed
//! answers, or a [`ClientError`] carrying its `{"error": ...}` message.
//! Every call is repeatable: reads trivially, and operator actions because
//! the coordinator ends in the same state when one is queued twice.

use crate::client::{Client, Retry};
use crate::error::ClientError;
use crate::ha::service::ServiceDef;
use crate::ha::views::{
    Checked, EventList, EventView, InstanceList, MoveRequest, NodeList, Queued, ServiceList, ServiceView,
};
use crate::line_stream::LineStream;
use reqwest::Method;

/// One decision is a few hundred bytes; bound a line anyway.
const EVENT_LINE_BYTES_MAX: usize = 1 << 20;

impl Client {
    pub async fn ha_nodes(&self) -> Result<NodeList, ClientError> {
        self.call_v1(Method::GET, "/v1/nodes", None, Retry::Repeatable).await
    }

    /// Drains (`true`) or undrains node `id`.
    pub async fn ha_drain(&self, id: u64, drained: bool) -> Result<Queued, ClientError> {
        let verb = if drained { "drain" } else { "undrain" };
        self.call_v1(Method::POST, &format!("/v1/nodes/{id}/{verb}"), None, Retry::Repeatable).await
    }

    pub async fn ha_services(&self) -> Result<ServiceList, ClientError> {
        self.call_v1(Method::GET, "/v1/services", None, Retry::Repeatable).await
    }

    pub async fn ha_service(&self, name: &str) -> Result<ServiceView, ClientError> {
        self.call_v1(Method::GET, &format!("/v1/services/{}", path_segment(name)?), None, Retry::Repeatable).await
    }

    /// Adds `def`, or replaces the service of that name.
    pub async fn ha_add_service(&self, def: &ServiceDef) -> Result<Queued, ClientError> {
        let body = to_value(def)?;
        self.call_v1(Method::POST, "/v1/services", Some(&body), Retry::Repeatable).await
    }

    /// Has the station check `def` without queuing it.
    pub async fn ha_check_service(&self, def: &ServiceDef) -> Result<Checked, ClientError> {
        let body = to_value(def)?;
        self.call_v1(Method::POST, "/v1/services?dry_run=true", Some(&body), Retry::Repeatable).await
    }

    pub async fn ha_remove_service(&self, name: &str) -> Result<Queued, ClientError> {
        self.call_v1(Method::DELETE, &format!("/v1/services/{}", path_segment(name)?), None, Retry::Repeatable).await
    }

    /// Enables (`true`) or disables service `name`.
    pub async fn ha_enable(&self, name: &str, enabled: bool) -> Result<Queued, ClientError> {
        let verb = if enabled { "enable" } else { "disable" };
        let path = format!("/v1/services/{}/{verb}", path_segment(name)?);
        self.call_v1(Method::POST, &path, None, Retry::Repeatable).await
    }

    pub async fn ha_move(&self, name: &str, to: u64) -> Result<Queued, ClientError> {
        let body = to_value(&MoveRequest { to })?;
        let path = format!("/v1/services/{}/move", path_segment(name)?);
        self.call_v1(Method::POST, &path, Some(&body), Retry::Repeatable).await
    }

    pub async fn ha_instances(&self, service: Option<&str>) -> Result<InstanceList, ClientError> {
        let path = match service {
            Some(name) => format!("/v1/instances?service={}", path_segment(name)?),
            None => "/v1/instances".to_owned(),
        };
        self.call_v1(Method::GET, &path, None, Retry::Repeatable).await
    }

    /// The decision log (about `service` only, if given), oldest first.
    pub async fn ha_events(&self, service: Option<&str>) -> Result<EventList, ClientError> {
        let path = match service {
            Some(name) => format!("/v1/events?service={}", path_segment(name)?),
            None => "/v1/events".to_owned(),
        };
        self.call_v1(Method::GET, &path, None, Retry::Repeatable).await
    }

    /// The decision log, then every new decision as it is made.
    pub async fn ha_follow_events(&self, service: Option<&str>) -> Result<EventStream, ClientError> {
        let path = match service {
            Some(name) => format!("/v1/events?follow=true&service={}", path_segment(name)?),
            None => "/v1/events?follow=true".to_owned(),
        };
        let (endpoint, response) = self.open_stream_with(Method::GET, &path, None).await?;
        Ok(EventStream { stream: LineStream::new(endpoint, "/v1/events", response, EVENT_LINE_BYTES_MAX) })
    }
}

/// `GET /v1/events?follow=true`: one decision per line.
#[derive(Debug)]
pub struct EventStream {
    stream: LineStream,
}

impl EventStream {
    pub fn endpoint(&self) -> &str {
        self.stream.endpoint()
    }

    /// The next decision; `None` once the station closed the stream.
    pub async fn next(&mut self) -> Result<Option<EventView>, ClientError> {
        let Some(line) = self.stream.next_line().await? else { return Ok(None) };
        let value: serde_json::Value =
            serde_json::from_slice(&line).map_err(|e| self.stream.protocol(&e.to_string()))?;
        if let Some(error) = value.get("error").and_then(serde_json::Value::as_str) {
            let message = error.to_owned();
            return Err(ClientError::Api { endpoint: self.stream.endpoint().to_owned(), status: 200, message });
        }
        serde_json::from_value(value).map(Some).map_err(|e| self.stream.protocol(&e.to_string()))
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ClientError> {
    serde_json::to_value(value).map_err(|e| ClientError::usage(format!("cannot encode the request: {e}")))
}

/// Service names are [a-z0-9-]; anything else would change the path, so it
/// is refused here rather than sent.
fn path_segment(name: &str) -> Result<&str, ClientError> {
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(name) } else { Err(ClientError::usage(format!("{name:?} is not a service name: use a-z, 0-9 and '-'"))) }
}
