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
use crate::agent::run::{KeepAliveError, StationLink};
use haven_client::Retry;
use haven_daemon::agent_api::{AgentKeepAliveAnswer, AgentKeepAliveBody, AgentProxyAnswer, REPORTS_LEN_MAX, held_path};
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

    /// From the proxy, held there up to `wait` while they have digest `known`.
    async fn proxy_commands(&self, url: &str, known: u32, wait: Duration) -> Result<Vec<AgentCommand>, String> {
        let request = self.http.get(held_path(url, known, wait)).timeout(self.settings.attempt + wait);
        let response = request.send().await.map_err(|e| e.to_string())?;
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

    async fn keep_alive(&self, lease: i64) -> Result<(), KeepAliveError> {
        if let Some(url) = self.url("keepalive") {
            match self.proxy_keep_alive(&url, lease).await {
                Ok(()) => return Ok(()),
                Err(ProxyFailure::LeaseGone) => return Err(KeepAliveError::Gone),
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

    async fn revoke(&self, lease: i64) -> Result<(), String> {
        self.stations.revoke(lease).await
    }

    async fn commands(&self, node: NodeId, known: u32, wait: Duration) -> Result<Vec<AgentCommand>, String> {
        self.refresh().await;
        if let Some(url) = self.url("commands") {
            match self.proxy_commands(&url, known, wait).await {
                Ok(commands) => return Ok(commands),
                Err(e) => self.forget_proxy(true, &e),
            }
        }
        self.stations.commands(node, known, wait).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use haven_client::ClientConfig;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, Default)]
    struct Calls {
        keep_alives: AtomicU32,
        commands: AtomicU32,
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A proxy that lists commands but refuses keep-alives (it is full).
    async fn refusing_proxy(calls: Arc<Calls>) -> String {
        let (k, c) = (calls.clone(), calls);
        let app = Router::new()
            .route(
                "/haven/v1/agents/4/keepalive",
                post(move || async move {
                    k.keep_alives.fetch_add(1, Ordering::SeqCst);
                    StatusCode::SERVICE_UNAVAILABLE
                }),
            )
            .route(
                "/haven/v1/agents/4/commands",
                get(move || async move {
                    c.commands.fetch_add(1, Ordering::SeqCst);
                    Json(Vec::<AgentCommand>::new())
                }),
            );
        serve(app).await
    }

    /// A station that assigns node 4 to proxy 9 at `proxy_url` and renews.
    async fn station(calls: Arc<Calls>, proxy_url: String) -> String {
        let (k, c) = (calls.clone(), calls);
        let app = Router::new()
            .route(
                "/haven/v1/agents/4/proxy",
                get(move || async move { Json(AgentProxyAnswer { proxy: Some(9), url: Some(proxy_url) }) }),
            )
            .route(
                "/haven/v1/agents/4/keepalive",
                post(move || async move {
                    k.keep_alives.fetch_add(1, Ordering::SeqCst);
                    Json(AgentKeepAliveAnswer { ttl: 1, moved: false })
                }),
            )
            .route(
                "/haven/v1/agents/4/commands",
                get(move || async move {
                    c.commands.fetch_add(1, Ordering::SeqCst);
                    Json(Vec::<AgentCommand>::new())
                }),
            );
        serve(app).await
    }

    #[tokio::test]
    async fn a_keep_alive_the_proxy_refuses_goes_to_the_stations_and_the_proxy_rests() {
        let (at_proxy, at_station) = (Arc::new(Calls::default()), Arc::new(Calls::default()));
        let proxy_url = refusing_proxy(at_proxy.clone()).await;
        let station_url = station(at_station.clone(), proxy_url).await;
        let config = ClientConfig { endpoints: vec![station_url], rounds_max: 1, ..ClientConfig::default() };
        let stations = HttpLink::connect(config, Duration::ZERO, NodeId(4)).unwrap();
        let settings = RouteSettings {
            node: NodeId(4),
            attempt: Duration::from_secs(2),
            query_interval: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
        };
        let link = RoutedLink::new(stations, settings).unwrap();
        let count = |calls: &Calls| (calls.keep_alives.load(Ordering::SeqCst), calls.commands.load(Ordering::SeqCst));

        link.commands(NodeId(4), 0, Duration::ZERO).await.unwrap();
        assert_eq!(link.proxy(), Some(NodeId(9)), "the stations named proxy 9");
        assert_eq!((count(&at_proxy), count(&at_station)), ((0, 1), (0, 0)), "commands from the proxy");

        link.keep_alive(40).await.expect("renewed at the stations");
        assert_eq!((count(&at_proxy), count(&at_station)), ((1, 1), (1, 0)), "refused, then the stations");
        assert_eq!(link.proxy(), None);

        link.keep_alive(40).await.unwrap();
        link.commands(NodeId(4), 0, Duration::ZERO).await.unwrap();
        let rested = ((1, 1), (2, 1));
        assert_eq!((count(&at_proxy), count(&at_station)), rested, "named again, but resting: the stations");
    }
}
