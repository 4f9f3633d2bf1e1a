//! The HTTP routes of etcd v3's JSON gateway.
//!
//! In: HTTP requests as etcd clients send them (`POST /v3/...` with a JSON
//! body, `GET /version`, `GET /health`). Out: etcd's JSON answers or error
//! bodies, from the [`Backend`]; `/v3/watch` and `/v3/lease/keepalive`
//! answer with a stream of JSON lines (see [`crate::stream`]).

use crate::backend::Backend;
use crate::body::read_bounded;
use crate::error::GatewayError;
use crate::json::{self, ResponseHeader};
use crate::limits::GatewayLimits;
use crate::stream;
use axum::Router;
use axum::extract::{Request as HttpRequest, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haven_store::{LeaseRevokeRequest, LeaseTimeToLiveRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The etcd version Haven reports, at `/version` and in status answers.
/// Clients choose the gateway prefix (`/v3beta` before 3.4, `/v3` since)
/// and the features they use from it; Haven implements 3.4's API, so it
/// claims 3.4.0 rather than a patch release whose fixes it does not copy.
pub const ETCD_VERSION: &str = "3.4.0";

#[derive(Clone, Debug)]
pub(crate) struct Gateway<B> {
    pub(crate) backend: B,
    pub(crate) limits: Arc<GatewayLimits>,
}

/// Every route of the etcd v3 JSON gateway, served from `backend`.
pub fn router<B: Backend>(backend: B, limits: GatewayLimits) -> Router {
    let gw = Gateway { backend, limits: Arc::new(limits) };
    Router::new()
        .route("/version", get(version))
        .route("/health", get(health::<B>))
        .route("/v3/kv/range", post(kv_range::<B>))
        .route("/v3/kv/put", post(kv_put::<B>))
        .route("/v3/kv/deleterange", post(kv_delete_range::<B>))
        .route("/v3/kv/txn", post(kv_txn::<B>))
        .route("/v3/kv/compaction", post(kv_compaction::<B>))
        .route("/v3/lease/grant", post(lease_grant::<B>))
        .route("/v3/lease/revoke", post(lease_revoke::<B>))
        .route("/v3/kv/lease/revoke", post(lease_revoke::<B>))
        .route("/v3/lease/timetolive", post(lease_time_to_live::<B>))
        .route("/v3/kv/lease/timetolive", post(lease_time_to_live::<B>))
        .route("/v3/lease/leases", post(lease_leases::<B>))
        .route("/v3/kv/lease/leases", post(lease_leases::<B>))
        .route("/v3/lease/keepalive", post(stream::keep_alive::<B>))
        .route("/v3/watch", post(stream::watch::<B>))
        .route("/v3/cluster/member/list", post(member_list::<B>))
        .route("/v3/cluster/member/add", post(member_add::<B>))
        .route("/v3/cluster/member/remove", post(member_remove::<B>))
        .route("/v3/cluster/member/promote", post(member_promote::<B>))
        .route("/v3/maintenance/status", post(status::<B>))
        .fallback(not_found)
        .with_state(gw)
}

/// Any other path: etcd's answer, word for word (its gateway is Go's
/// `http.NotFound`), so a client that tells versions apart by it still can.
async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not Found\n").into_response()
}

pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).expect("gateway answers always serialize");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn reply<T: Serialize>(result: Result<T, GatewayError>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => e.into_response(),
    }
}

impl<B: Backend> Gateway<B> {
    /// The request's JSON body. Handlers take the whole request rather
    /// than `HeaderMap` and `Body`: axum's `HeaderMap` extractor clones
    /// every header of every request, and dropping the copy showed up in
    /// profiles of the 256-client benchmark.
    async fn parse<T: DeserializeOwned + Default>(&self, request: HttpRequest) -> Result<T, GatewayError> {
        let (parts, body) = request.into_parts();
        let bytes = read_bounded(&parts.headers, body, self.limits.body_bytes_max()).await?;
        Ok(json::parse(&bytes)?)
    }

    /// One store request built from the body; etcd's answer for it.
    async fn store_call<T: DeserializeOwned + Default>(
        &self,
        request: HttpRequest,
        make: impl FnOnce(T) -> Result<(Request, bool), GatewayError>,
    ) -> Response {
        let result = async {
            let (request, serializable) = make(self.parse(request).await?)?;
            let response = self.backend.request(request, serializable).await?;
            let head = ResponseHeader::new(&self.backend.identity(), json::response_revision(&response));
            Ok::<_, GatewayError>(json::response_body(&response, head))
        };
        match result.await {
            Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => e.into_response(),
        }
    }

    fn header(&self, revision: u64) -> ResponseHeader {
        ResponseHeader::new(&self.backend.identity(), revision)
    }
}

/// A body with no fields of interest, still checked to be a JSON object.
#[derive(Debug, Default, Deserialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct Version {
    etcdserver: &'static str,
    etcdcluster: &'static str,
}

async fn version() -> Response {
    json_response(StatusCode::OK, &Version { etcdserver: ETCD_VERSION, etcdcluster: ETCD_VERSION })
}

/// Healthy, as etcd 3.4 judges it: a leader is known and a linearizable
/// read goes through.
async fn health<B: Backend>(State(gw): State<Gateway<B>>) -> Response {
    let has_leader = matches!(gw.backend.status().await, Ok(s) if s.leader != 0);
    let probe = haven_store::RangeRequest { key: b"health".to_vec(), keys_only: true, limit: 1, ..Default::default() };
    let healthy = has_leader && gw.backend.request(Request::Range(probe), false).await.is_ok();
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, &serde_json::json!({ "health": healthy.to_string() }))
}

async fn kv_range<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |r: json::RangeRequest| Ok((Request::Range((&r).into()), r.serializable))).await
}

async fn kv_put<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |p: json::PutRequest| Ok((Request::Put(p.into()), false))).await
}

async fn kv_delete_range<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |d: json::DeleteRangeRequest| Ok((Request::DeleteRange((&d).into()), false))).await
}

async fn kv_txn<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |t: json::TxnRequest| Ok((Request::Txn((&t).try_into()?), t.is_serializable()))).await
}

async fn kv_compaction<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |c: json::CompactionRequest| Ok((Request::Compact((&c).into()), false))).await
}

async fn lease_grant<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |g: json::LeaseGrantRequest| Ok((Request::LeaseGrant((&g).into()), false))).await
}

async fn lease_revoke<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let make = |r: json::LeaseIdRequest| Ok((Request::LeaseRevoke(LeaseRevokeRequest { id: r.id }), false));
    gw.store_call(request, make).await
}

async fn lease_time_to_live<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let make = |r: json::LeaseIdRequest| {
        Ok((Request::LeaseTimeToLive(LeaseTimeToLiveRequest { id: r.id, keys: r.keys }), false))
    };
    gw.store_call(request, make).await
}

async fn lease_leases<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    gw.store_call(request, |_: Empty| Ok((Request::LeaseLeases, false))).await
}

async fn member_list<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let result = async {
        gw.parse::<Empty>(request).await?;
        let members = gw.backend.member_list().await?;
        Ok(json::MembersResponse { header: gw.header(0), members: json::members(&members) })
    };
    reply(result.await)
}

async fn member_add<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let result = async {
        let req: json::MemberAddRequest = gw.parse(request).await?;
        if req.peer_urls.is_empty() || !req.peer_urls.iter().all(|u| is_peer_url(u)) {
            // etcd's exact words: its Go client recognises errors by them.
            return Err(GatewayError::Invalid("given member URLs are invalid".into()));
        }
        let (member, members) = gw.backend.member_add(req.peer_urls, req.is_learner).await?;
        Ok(json::MemberAddResponse {
            header: gw.header(0),
            member: Some((&member).into()),
            members: json::members(&members),
        })
    };
    reply(result.await)
}

/// `scheme://host:port` with scheme http or https and no path, as etcd wants.
fn is_peer_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else { return false };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok(),
        None => false,
    }
}

async fn member_remove<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let result = async {
        let req: json::MemberIdRequest = gw.parse(request).await?;
        let members = gw.backend.member_remove(req.id).await?;
        Ok(json::MembersResponse { header: gw.header(0), members: json::members(&members) })
    };
    reply(result.await)
}

async fn member_promote<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let result = async {
        let req: json::MemberIdRequest = gw.parse(request).await?;
        let members = gw.backend.member_promote(req.id).await?;
        Ok(json::MembersResponse { header: gw.header(0), members: json::members(&members) })
    };
    reply(result.await)
}

async fn status<B: Backend>(State(gw): State<Gateway<B>>, request: HttpRequest) -> Response {
    let result = async {
        gw.parse::<Empty>(request).await?;
        let status = gw.backend.status().await?;
        Ok(json::StatusResponse::from_backend(&status, gw.header(gw.backend.revision())))
    };
    reply(result.await)
}
