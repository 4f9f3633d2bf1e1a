//! The proxy as a node of the cluster: its own lease, its registration,
//! and the poll of its agents' commands.
//!
//! In: the stations (through [`HttpLink`] and its client). Out: the proxy
//! joined as node `id` with the labels that make it a proxy
//! (`haven.role=proxy`, and `haven.proxy.url` saying where agents reach
//! it) and `haven.services=none`, so that no service is ever placed on it
//! (it runs none; a drain after the join would leave a window), its
//! lease renewed every third of its TTL, joined again under a new lease
//! when one lapses; and its agents' pending commands handed to the core
//! whenever they change (a fetch at a time, held at the station until
//! then, at most one per poll).
//!
//! The lease is the proxy's liveness: once it expires at the stations, or
//! the proxy revokes it on a clean stop, the coordinator moves the proxy's
//! agents to another proxy (or to none).

use crate::agent::http_link::HttpLink;
use crate::agent::run::StationLink;
use crate::proxy::host::Inbox;
use haven_daemon::agent_api::{PROXY_URL_LABEL, commands_digest};
use haven_ha::{NO_SERVICES_LABEL, PROXY_LABEL};
use haven_runtime::NodeId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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
    BTreeMap::from([
        (PROXY_LABEL.0.to_owned(), PROXY_LABEL.1.to_owned()),
        (PROXY_URL_LABEL.to_owned(), url.to_owned()),
        (NO_SERVICES_LABEL.0.to_owned(), NO_SERVICES_LABEL.1.to_owned()),
    ])
}

/// Keeps the proxy's node joined and alive, publishing its lease in
/// `current` (0 while it has none, for [`leave`]); never returns.
pub async fn stay_joined(link: HttpLink, settings: MemberSettings, current: Arc<AtomicI64>) {
    let every = Duration::from_millis((settings.lease_ttl_ms / 3).max(1));
    let mut tick = tokio::time::interval(every);
    let mut lease: Option<(i64, Instant)> = None;
    loop {
        tick.tick().await;
        current.store(lease.map_or(0, |(id, _)| id), Ordering::Relaxed);
        let Some((id, renewed)) = lease else {
            lease = join(&link, &settings).await.map(|id| (id, Instant::now()));
            current.store(lease.map_or(0, |(id, _)| id), Ordering::Relaxed);
            continue;
        };
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

/// A clean stop, once [`stay_joined`] has stopped: revokes the proxy's
/// lease, so the stations move its agents at once rather than once it
/// would have expired (they go to the stations themselves meanwhile).
pub async fn leave(link: &HttpLink, current: &AtomicI64) {
    let lease = current.load(Ordering::Relaxed);
    if lease == 0 {
        return;
    }
    match link.revoke(lease).await {
        Ok(()) => tracing::info!(lease, "lease revoked: the stations move this proxy's agents now"),
        Err(e) => tracing::warn!(lease, error = %e, "lease not revoked; its agents move once it expires"),
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

/// Fetches the pending commands of this proxy's agents from any station,
/// each fetch held there up to `wait` until they change, at most one per
/// `every`; ends when the core is gone.
pub async fn poll_commands(link: HttpLink, id: NodeId, every: Duration, wait: Duration, inbox: mpsc::Sender<Inbox>) {
    let path = format!("/haven/v1/proxies/{}/commands", id.0);
    let mut known = commands_digest(&[]);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match link.commands_at(&path, known, wait).await {
            Ok(commands) => {
                known = commands_digest(&commands);
                if inbox.send(Inbox::Commands(commands)).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!(error = %e, "commands not fetched"),
        }
    }
}
