//! The agent's [`StationLink`] over the stations' HTTP APIs: the lease
//! through etcd's (`/v3/lease/grant`, `/v3/lease/keepalive`), the rest
//! through the agents' endpoints (`/haven/v1/agents/{node}/...`), every
//! call failing over between the endpoints like the CLI's.

use crate::agent::run::StationLink;
use haven_client::{Client, LeaseGrantRequest, Retry};
use haven_ha::{AgentCommand, Event};
use haven_runtime::NodeId;
use reqwest::Method;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct HttpLink {
    client: Client,
}

impl HttpLink {
    pub fn new(client: Client) -> HttpLink {
        HttpLink { client }
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl StationLink for HttpLink {
    async fn grant(&self, ttl_ms: u64) -> Result<(i64, u64), String> {
        let ttl = i64::try_from(ttl_ms.div_ceil(1_000)).map_err(text)?;
        let granted = self.client.lease_grant(&LeaseGrantRequest { ttl, id: 0 }).await.map_err(text)?;
        let granted_ms = u64::try_from(granted.ttl).map_err(text)?.saturating_mul(1_000);
        Ok((granted.id, granted_ms))
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), String> {
        let answer = self.client.lease_keep_alive(lease).await.map_err(text)?;
        if answer.ttl <= 0 {
            return Err(format!("lease {lease} is gone"));
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

    async fn commands(&self, node: NodeId) -> Result<Vec<AgentCommand>, String> {
        let path = format!("/haven/v1/agents/{}/commands", node.0);
        self.client.call_v1(Method::GET, &path, None, Retry::Repeatable).await.map_err(text)
    }
}
