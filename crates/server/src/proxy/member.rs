//! The proxy as a node of the cluster: its own lease, its registration,
//! and the poll of its agents' commands.
//!
//! In: the stations (through [`HttpLink`] and its client). Out: the proxy
//! joined as node `id` with the labels that make it a proxy
//! (`haven.role=proxy`, and `haven.proxy.url` saying where agents reach
//! it), drained so that no service is placed on it (it runs none), its
//! lease renewed every third of its TTL, joined again under a new lease
//! when one lapses; and, every poll, its agents' pending commands handed to
//! the core.
//!
//! The lease is the proxy's liveness: once it expires at the stations the
//! coordinator moves the proxy's agents to another proxy (or to none).

use crate::agent::http_link::HttpLink;
use crate::agent::run::StationLink;
use crate::proxy::host::Inbox;
use haven_client::Retry;
use haven_daemon::agent_api::PROXY_URL_LABEL;
use haven_ha::{AgentCommand, PROXY_LABEL};
use haven_runtime::NodeId;
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct MemberSettings {
    pub id: NodeId,
    /// Where agents reach this proxy, `http://IP:port`.
    pub url: String,
    /// The address recorded for the node.
    pub address: String,
    pub lease_ttl_ms: u64,
}

/// The labels a `haven proxy` joins with.
pub fn labels(url: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(PROXY_LABEL.0.to_owned(), PROXY_LABEL.1.to_owned()), (PROXY_URL_LABEL.to_owned(), url.to_owned())])
}

/// Keeps the proxy's node joined and alive; never returns.
pub async fn stay_joined(link: HttpLink, settings: MemberSettings) {
    let every = Duration::from_millis((settings.lease_ttl_ms / 3).max(1));
    let mut tick = tokio::time::interval(every);
    let mut lease: Option<(i64, Instant)> = None;
    let mut drained = false;
    loop {
        tick.tick().await;
        let Some((id, renewed)) = lease else {
            lease = join(&link, &settings).await.map(|id| (id, Instant::now()));
            drained = false;
            continue;
        };
        if !drained {
            drained = drain(&link, settings.id).await;
        }
        let sent = Instant::now();
        match link.keep_alive(id).await {
            Ok(()) => lease = Some((id, sent)),
            Err(e) if renewed.elapsed() >= Duration::from_millis(settings.lease_ttl_ms) => {
                tracing::warn!(lease = id, error = %e, "the proxy's lease lapsed; joining again");
                lease = None;
            }
            Err(e) => tracing::warn!(lease = id, error = %e, "the proxy's lease not renewed"),
        }
    }
}

async fn join(link: &HttpLink, settings: &MemberSettings) -> Option<i64> {
    let (lease, _) = match link.grant(settings.lease_ttl_ms).await {
        Ok(granted) => granted,
        Err(e) => {
            tracing::warn!(error = %e, "cannot get a lease; retrying");
            return None;
        }
    };
    let labels = labels(&settings.url);
    if let Err(e) = link.join(settings.id, &settings.address, &labels, lease).await {
        tracing::warn!(error = %e, "cannot join; retrying");
        return None;
    }
    tracing::info!(lease, url = %settings.url, "proxy joined");
    Some(lease)
}

/// Asks the stations to place nothing on this node: a proxy runs no services.
async fn drain(link: &HttpLink, id: NodeId) -> bool {
    let path = format!("/v1/nodes/{}/drain", id.0);
    let done: Result<serde_json::Value, _> = link.client().call_v1(Method::POST, &path, None, Retry::Repeatable).await;
    match done {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "drain not queued yet; retrying");
            false
        }
    }
}

/// Polls the pending commands of this proxy's agents every `every`, from
/// any station; ends when the core is gone.
pub async fn poll_commands(link: HttpLink, id: NodeId, every: Duration, inbox: mpsc::Sender<Inbox>) {
    let path = format!("/haven/v1/proxies/{}/commands", id.0);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let polled: Result<Vec<AgentCommand>, _> =
            link.client().call_v1(Method::GET, &path, None, Retry::Repeatable).await;
        match polled {
            Ok(commands) => {
                if inbox.send(Inbox::Commands(commands)).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!(error = %e, "commands not polled"),
        }
    }
}
