//! The agent's [`StationLink`] over the stations' HTTP APIs: the node's
//! lease granted in milliseconds (`/haven/v1/leases`, as etcd's API counts
//! in seconds), the rest through the agents' endpoints
//! (`/haven/v1/agents/{node}/...`, keep-alives included, so a
//! station counts an agent's requests in one place), every call failing
//! over between the endpoints like the CLI's. Command fetches may wait at
//! the station until the node's commands change (`?known=&wait_ms=`).

use crate::agent::run::{KeepAliveError, StationLink};
use haven_client::{Client, ClientConfig, ClientError, Retry};
use haven_daemon::agent_api::{
    AgentKeepAliveAnswer, AgentKeepAliveBody, LeaseGrantMsAnswer, LeaseGrantMsBody, held_path,
};
use haven_ha::{AgentCommand, Event};
use haven_runtime::NodeId;
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct HttpLink {
    client: Client,
    /// For command fetches that wait at a station: its attempts last the
    /// wait longer than `client`'s.
    waiting: Client,
    /// The node whose lease `keep_alive` renews.
    node: NodeId,
}

impl HttpLink {
    /// Both clients from one configuration: the waiting one's attempts get
    /// `commands_wait`, the longest wait this link asks for, on top of
    /// `config`'s.
    pub fn connect(config: ClientConfig, commands_wait: Duration, node: NodeId) -> Result<HttpLink, ClientError> {
        let request_timeout = config.request_timeout + commands_wait;
        let waiting = Client::new(ClientConfig { request_timeout, ..config.clone() })?;
        Ok(HttpLink { client: Client::new(config)?, waiting, node })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The commands listed at `path` (an agent's or a proxy's): at once
    /// when `wait` is zero, else held at the station up to `wait` while
    /// they still have digest `known`, through the client with longer attempts.
    pub async fn commands_at(&self, path: &str, known: u32, wait: Duration) -> Result<Vec<AgentCommand>, String> {
        let client = if wait.is_zero() { &self.client } else { &self.waiting };
        let path = held_path(path, known, wait);
        client.call_v1(Method::GET, &path, None, Retry::Repeatable).await.map_err(text)
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl StationLink for HttpLink {
    async fn grant(&self, ttl_ms: u64) -> Result<(i64, u64), String> {
        // Not repeated on a lost answer, as etcd's grant: a retry would
        // leave the first lease to expire unused.
        let body = serde_json::to_value(LeaseGrantMsBody { ttl_ms }).map_err(text)?;
        let granted: LeaseGrantMsAnswer = self
            .client
            .call_v1(Method::POST, "/haven/v1/leases", Some(&body), Retry::NotRepeatable)
            .await
            .map_err(text)?;
        Ok((granted.id, granted.ttl_ms))
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), KeepAliveError> {
        let path = format!("/haven/v1/agents/{}/keepalive", self.node.0);
        let body =
            serde_json::to_value(AgentKeepAliveBody { lease }).map_err(|e| KeepAliveError::Unanswered(text(e)))?;
        let answer: AgentKeepAliveAnswer =
            match self.client.call_v1(Method::POST, &path, Some(&body), Retry::Repeatable).await {
                Ok(answer) => answer,
                // The stations' word for a lease they no longer have.
                Err(ClientError::Api { status: 404, .. }) => return Err(KeepAliveError::Gone),
                Err(e) => return Err(KeepAliveError::Unanswered(text(e))),
            };
        if answer.ttl <= 0 {
            return Err(KeepAliveError::Gone);
        }
        Ok(())
    }

    async fn join(
        &self,
        node: NodeId,
        address: &str,
        labels: &BTreeMap<String, String>,
        lease: i64,
    ) -> Result<(), String> {
        let body = serde_json::json!({ "address": address, "labels": labels, "lease": lease });
        let path = format!("/haven/v1/agents/{}/join", node.0);
        let _: u64 = self.client.call_v1(Method::POST, &path, Some(&body), Retry::NotRepeatable).await.map_err(text)?;
        Ok(())
    }

    async fn report(&self, node: NodeId, events: &[Event]) -> Result<(), String> {
        let path = format!("/haven/v1/agents/{}/reports", node.0);
        for chunk in events.chunks(haven_daemon::agent_api::REPORTS_LEN_MAX) {
            let body = serde_json::to_value(chunk).map_err(text)?;
            let _: usize =
                self.client.call_v1(Method::POST, &path, Some(&body), Retry::NotRepeatable).await.map_err(text)?;
        }
        Ok(())
    }

    async fn revoke(&self, lease: i64) -> Result<(), String> {
        self.client.lease_revoke(lease).await.map(drop).map_err(text)
    }

    async fn commands(&self, node: NodeId, known: u32, wait: Duration) -> Result<Vec<AgentCommand>, String> {
        self.commands_at(&format!("/haven/v1/agents/{}/commands", node.0), known, wait).await
    }
}
