//! The dashboard every station serves: one self-contained page
//! (`dashboard.html`) that draws the cluster from the station's own public
//! APIs, so it needs no state, build step or asset server of its own.
//!
//! In: `GET /dashboard` and `GET /`. Out: the page, and a redirect to it
//! from `/` (so a browser pointed at any station's client URL lands on it).

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The page; it polls `/v3/maintenance/status`, `/v3/cluster/member/list`,
/// `/v1/nodes`, `/v1/services` and `/v1/events` once a second.
pub const DASHBOARD_HTML: &str = include_str!("../dashboard.html");
pub const DASHBOARD_PATH: &str = "/dashboard";

pub fn router() -> Router {
    Router::new().route(DASHBOARD_PATH, get(page)).route("/", get(|| async { Redirect::to(DASHBOARD_PATH) }))
}

async fn page() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")];
    (headers, DASHBOARD_HTML).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths the page fetches, as written in its script.
    fn fetched_paths() -> Vec<&'static str> {
        let mut paths = Vec::new();
        for call in ["getJson(\"", "postJson(\""] {
            for (at, _) in DASHBOARD_HTML.match_indices(call) {
                let rest = &DASHBOARD_HTML[at + call.len()..];
                paths.push(&rest[..rest.find('"').expect("a closed string")]);
            }
        }
        paths.retain(|p| p.starts_with('/'));
        paths
    }

    #[test]
    fn the_page_reads_only_routes_the_station_serves() {
        let v1: Vec<&str> = crate::ha_api::routes_table().iter().map(|r| r.path).collect();
        let etcd = ["/v3/maintenance/status", "/v3/cluster/member/list"];
        let paths = fetched_paths();
        assert_eq!(paths.len(), 5, "{paths:?}");
        for path in paths {
            assert!(v1.contains(&path) || etcd.contains(&path), "the dashboard fetches {path}, which no route serves");
        }
    }

    #[test]
    fn cluster_text_never_reaches_inner_html() {
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"] {
            assert!(!DASHBOARD_HTML.contains(sink), "{sink}: service names and labels are operator input");
        }
    }
}
