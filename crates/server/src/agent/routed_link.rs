//! The agent's link when proxies may exist: through its proxy while it
//! answers, through the stations otherwise.
//!
//! In: the agent loop's calls (the [`StationLink`] methods), the stations'
//! answer to "which proxy is mine" (`GET /haven/v1/agents/{node}/proxy`),
//! and the proxy's answers. Out: each call made once at the proxy and, if
//! the proxy does not answer it (refused, timed out, full, or it says the
//! stations moved this agent), at once again at the stations — so a dead
//! proxy costs a keep-alive one short attempt, never the lease.
//!
//! Which proxy: asked of the stations after each join, right after a proxy
//! says the agent moved, and every `query_interval` while the agent talks
//! to the stations (none assigned, or its proxy failed). A proxy that
//! failed is not used again for `cooldown`: the stations keep naming it
//! until its lease expires and the coordinator moves its agents. Grants and
//! joins always go to the stations (a join makes a new session, which the
//! proxy has no part in). A lease the proxy reports gone is gone: the
//! leader said so, and asking the stations again would not change it.

use crate::agent::http_link::HttpLink;
use crate::agent::run::StationLink;
use haven_client::Retry;
use haven_daemon::agent_api::{AgentKeepAliveAnswer, AgentKeepAliveBody, AgentProxyAnswer, REPORTS_LEN_MAX};
use haven_ha::{AgentCommand, Event};
use haven_runtime::NodeId;
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct RouteSettings {
    pub node: NodeId,
    /// One attempt at the proxy, connecting included.
    pub attempt: Duration,
    pub query_interval: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Default)]
struct Route {
    proxy: Option<(NodeId, String)>,
    /// The proxy that last failed, and when.
    failed: Option<(NodeId, Instant)>,
    asked_at: Option<Instant>,
}

#[derive(Debug)]
pub struct RoutedLink {
    stations: HttpLink,
    http: reqwest::Client,
    settings: RouteSettings,
    route: Mutex<Route>,
}

/// Why a call at the proxy did not do: fall back, or a final answer.
enum ProxyFailure {
    Unavailable(String),
    LeaseGone,
}

impl RoutedLink {
    pub fn new(stations: HttpLink, settings: RouteSettings) -> anyhow::Result<RoutedLink> {
        let http = reqwest::Client::builder().timeout(settings.attempt).connect_timeout(settings.attempt).build()?;
        Ok(RoutedLink { stations, http, settings, route: Mutex::new(Route::default()) })
    }

    /// The proxy in use, if any.
    pub fn proxy(&self) -> Option<NodeId> {
        self.route.lock().expect("never poisoned").proxy.as_ref().map(|(id, _)| *id)
    }

    fn forget_proxy(&self, failed: bool, why: &str) {
        let mut route = self.route.lock().expect("never poisoned");
        let Some((id, url)) = route.proxy.take() else { return };
        tracing::warn!(proxy = id.0, %url, why, "talking to the stations instead of the proxy");
        if failed {
            route.failed = Some((id, Instant::now()));
        }
        route.asked_at = None; // ask again at once: the stations may name another
    }

    /// Asks the stations for this agent's proxy when it is time.
    async fn refresh(&self) {
        let now = Instant::now();
        {
            let route = self.route.lock().expect("never poisoned");
            let due = route.asked_at.is_none_or(|at| now.duration_since(at) >= self.settings.query_interval);
            if route.proxy.is_some() || !due {
                return;
            }
        }
        self.route.lock().expect("never poisoned").asked_at = Some(now);
        let path = format!("/haven/v1/agents/{}/proxy", self.settings.node.0);
        let answer: AgentProxyAnswer =
            match self.stations.client().call_v1(Method::GET, &path, None, Retry::Repeatable).await {
                Ok(answer) => answer,
                Err(e) => return tracing::debug!(error = %e, "no answer about this agent's proxy"),
            };
        let (Some(id), Some(url)) = (answer.proxy.map(NodeId), answer.url) else { return };
        let mut route = self.route.lock().expect("never poisoned");
        let cooling = route.failed.is_some_and(|(f, at)| f == id && at.elapsed() < self.settings.cooldown);
        if !cooling {
            tracing::info!(proxy = id.0, %url, "reporting through a proxy");
            route.proxy = Some((id, url));
        }
    }

    fn url(&self, tail: &str) -> Option<String> {
        let route = self.route.lock().expect("never poisoned");
        let (_, base) = route.proxy.as_ref()?;
        Some(format!("{base}/haven/v1/agents/{}/{tail}", self.settings.node.0))
    }

    async fn proxy_keep_alive(&self, url: &str, lease: i64) -> Result<(), ProxyFailure> {
        let unavailable = |e: String| ProxyFailure::Unavailable(e);
        let response = (self.http.post(url).json(&AgentKeepAliveBody { lease }).send().await)
            .map_err(|e| unavailable(e.to_string()))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(ProxyFailure::LeaseGone),
            StatusCode::CONFLICT => {
                self.forget_proxy(false, "the stations assigned this agent elsewhere");
                return Err(unavailable("moved".into()));
            }
            status => return Err(unavailable(format!("HTTP {status}"))),
        }
        let answer: AgentKeepAliveAnswer = response.json().await.map_err(|e| unavailable(e.to_string()))?;
        if answer.moved {
            self.forget_proxy(false, "the stations assigned this agent elsewhere");
        }
        Ok(())
    }

    async fn proxy_commands(&self, url: &str) -> Result<Vec<AgentCommand>, String> {
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    async fn proxy_report(&self, url: &str, events: &[Event]) -> Result<(), String> {
        for chunk in events.chunks(REPORTS_LEN_MAX) {
            let response = self.http.post(url).json(chunk).send().await.map_err(|e| e.to_string())?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(format!("HTTP {}", response.status()));
            }
        }
        Ok(())
    }
}

impl StationLink for RoutedLink {
    async fn grant(&self, ttl_ms: u64) -> Result<(i64, u64), String> {
        self.stations.grant(ttl_ms).await
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), String> {
        if let Some(url) = self.url("keepalive") {
            match self.proxy_keep_alive(&url, lease).await {
                Ok(()) => return Ok(()),
                Err(ProxyFailure::LeaseGone) => return Err(format!("lease {lease} is gone")),
                Err(ProxyFailure::Unavailable(e)) => self.forget_proxy(true, &e),
            }
        }
        self.stations.keep_alive(lease).await
    }

    async fn join(
        &self,
        node: NodeId,
        address: &str,
        labels: &BTreeMap<String, String>,
        lease: i64,
    ) -> Result<(), String> {
        self.stations.join(node, address, labels, lease).await?;
        let mut route = self.route.lock().expect("never poisoned");
        route.proxy = None;
        route.asked_at = None;
        Ok(())
    }

    async fn report(&self, node: NodeId, events: &[Event]) -> Result<(), String> {
        if let Some(url) = self.url("reports") {
            match self.proxy_report(&url, events).await {
                Ok(()) => return Ok(()),
                Err(e) => self.forget_proxy(true, &e),
            }
        }
        self.stations.report(node, events).await
    }

    async fn commands(&self, node: NodeId) -> Result<Vec<AgentCommand>, String> {
        self.refresh().await;
        if let Some(url) = self.url("commands") {
            match self.proxy_commands(&url).await {
                Ok(commands) => return Ok(commands),
                Err(e) => self.forget_proxy(true, &e),
            }
        }
        self.stations.commands(node).await
    }
}
