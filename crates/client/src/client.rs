//! The HTTP client of the etcd v3 JSON API, with failover between endpoints.
//!
//! In: a request body for a path (`/v3/kv/put`, …). Out: the decoded answer
//! of the first endpoint that gives one, or a [`ClientError`]. An endpoint
//! that refuses the connection, times out or answers 503/429 is left for
//! the next; after each full round over the endpoints the client sleeps a
//! jittered backoff, for at most `rounds_max` rounds. The endpoint that
//! answered is tried first next time.

use crate::backoff::Backoff;
use crate::endpoint::parse_endpoints;
use crate::error::{AttemptFailure, ClientError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base URLs, e.g. `http://127.0.0.1:2379` (see [`crate::parse_endpoint`]).
    pub endpoints: Vec<String>,
    /// Time for one attempt at one endpoint, from connecting to the last byte.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Full passes over the endpoints before giving up.
    pub rounds_max: u32,
    pub backoff: Backoff,
    /// Larger answers are refused rather than buffered.
    pub response_bytes_max: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            rounds_max: 3,
            backoff: Backoff::default(),
            response_bytes_max: 64 << 20,
        }
    }
}

/// May a request be sent again after an attempt whose fate is unknown?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads and renewals: sending twice does no harm.
    Repeatable,
    /// Writes: resent only when the failed attempt surely changed nothing
    /// (connection refused, or the server answered 503/429).
    NotRepeatable,
}

/// A cheap-to-clone handle; clones share the connection pool and the
/// remembered endpoint.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Arc<[String]>,
    preferred: Arc<AtomicUsize>,
    config: Arc<ClientConfig>,
}

/// How one attempt at one endpoint ended, when it did not succeed.
enum Failed {
    /// The server answered with an error that another endpoint would repeat.
    Final(ClientError),
    /// Worth trying elsewhere; `maybe_applied` if the request may have run.
    Retry { cause: String, maybe_applied: bool },
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoints = parse_endpoints(&config.endpoints)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ClientError::usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            endpoints: endpoints.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
            config: config.into(),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The endpoint the next request goes to first.
    pub fn preferred_endpoint(&self) -> &str {
        &self.endpoints[self.preferred.load(Ordering::Relaxed) % self.endpoints.len()]
    }

    pub(crate) async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        retry: Retry,
    ) -> Result<R, ClientError> {
        self.call_with_endpoint(path, body, retry).await.map(|(_, answer)| answer)
    }

    /// As [`Client::call`], also saying which endpoint answered.
    pub(crate) async fn call_with_endpoint<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        retry: Retry,
    ) -> Result<(String, R), ClientError> {
        let payload = encode(body)?;
        self.send_with_failover(reqwest::Method::POST, path, Some(&payload), retry).await
    }

    /// A request to Haven's own JSON API (`/v1/`, and the agents' internal
    /// `/haven/v1/agents/`): `body` only for writes that carry one; the
    /// same failover as the etcd calls.
    pub async fn call_v1<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry: Retry,
    ) -> Result<R, ClientError> {
        let payload = body.map(encode).transpose()?;
        self.send_with_failover(method, path, payload.as_deref(), retry).await.map(|(_, answer)| answer)
    }

    async fn send_with_failover<R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        payload: Option<&[u8]>,
        retry: Retry,
    ) -> Result<(String, R), ClientError> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_failure: Vec<Option<String>> = vec![None; count];
        for attempt in 0..count * self.config.rounds_max.max(1) as usize {
            if attempt > 0 && attempt % count == 0 {
                let round = u32::try_from(attempt / count - 1).unwrap_or(u32::MAX);
                tokio::time::sleep(self.config.backoff.delay(round)).await;
            }
            let index = (first + attempt) % count;
            let endpoint = &self.endpoints[index];
            match self.attempt(endpoint, method.clone(), path, payload).await {
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((endpoint.clone(), answer));
                }
                Err(Failed::Final(error)) => return Err(error),
                Err(Failed::Retry { maybe_applied: true, .. }) if retry == Retry::NotRepeatable => {
                    return Err(ClientError::OutcomeUnknown {
                        endpoint: endpoint.clone(),
                        timeout_ms: millis(self.config.request_timeout),
                    });
                }
                Err(Failed::Retry { cause, .. }) => last_failure[index] = Some(cause),
            }
        }
        let attempts = self
            .endpoints
            .iter()
            .zip(last_failure)
            .filter_map(|(endpoint, cause)| Some(AttemptFailure { endpoint: endpoint.clone(), cause: cause? }))
            .collect();
        Err(ClientError::Unreachable { attempts })
    }

    /// One request to one endpoint (which need not be one of ours), no failover.
    pub(crate) async fn call_one<B: Serialize, R: DeserializeOwned>(
        &self,
        endpoint: &str,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        match self.attempt(endpoint, reqwest::Method::POST, path, Some(&encode(body)?)).await {
            Ok(answer) => Ok(answer),
            Err(Failed::Final(error)) => Err(error),
            Err(Failed::Retry { cause, .. }) => Err(ClientError::Unreachable {
                attempts: vec![AttemptFailure { endpoint: endpoint.to_owned(), cause }],
            }),
        }
    }

    /// Opens a streaming request (watch) with failover; the timeout covers
    /// only the wait for the response headers, not the stream.
    pub(crate) async fn open_stream<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(String, reqwest::Response), ClientError> {
        let payload = encode(body)?;
        self.open_stream_with(reqwest::Method::POST, path, Some(payload)).await
    }

    /// Opens a streaming request with any method, with failover; the
    /// timeout covers only the wait for the response headers.
    pub(crate) async fn open_stream_with(
        &self,
        method: reqwest::Method,
        path: &str,
        payload: Option<Vec<u8>>,
    ) -> Result<(String, reqwest::Response), ClientError> {
        let count = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut attempts = Vec::new();
        for step in 0..count {
            let index = (first + step) % count;
            let endpoint = &self.endpoints[index];
            let send = self.request(method.clone(), &format!("{endpoint}{path}"), payload.as_deref()).send();
            let cause = match tokio::time::timeout(self.config.request_timeout, send).await {
                Ok(Ok(response)) if response.status().is_success() => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((endpoint.clone(), response));
                }
                Ok(Ok(response)) => match self.refusal(endpoint, path, response).await {
                    Failed::Final(error) => return Err(error),
                    Failed::Retry { cause, .. } => cause,
                },
                Ok(Err(error)) => transport_cause(&error, self.config.request_timeout),
                Err(_) => format!("no answer within {} ms", millis(self.config.request_timeout)),
            };
            attempts.push(AttemptFailure { endpoint: endpoint.clone(), cause });
        }
        Err(ClientError::Unreachable { attempts })
    }

    fn request(&self, method: reqwest::Method, url: &str, payload: Option<&[u8]>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match payload {
            Some(payload) => request.header(reqwest::header::CONTENT_TYPE, "application/json").body(payload.to_vec()),
            None => request,
        }
    }

    async fn attempt<R: DeserializeOwned>(
        &self,
        endpoint: &str,
        method: reqwest::Method,
        path: &str,
        payload: Option<&[u8]>,
    ) -> Result<R, Failed> {
        let url = format!("{endpoint}{path}");
        let sent = self.request(method, &url, payload).timeout(self.config.request_timeout).send().await;
        let mut response = sent.map_err(|error| self.transport_failure(&error))?;
        if !response.status().is_success() {
            return Err(self.refusal(endpoint, path, response).await);
        }
        let body = read_body(&mut response, self.config.response_bytes_max).await.map_err(|error| match error {
            BodyError::Transport(error) => self.transport_failure(&error),
            BodyError::TooLarge => Failed::Final(protocol(endpoint, path, "the answer is larger than the limit")),
        })?;
        serde_json::from_slice(&body).map_err(|e| Failed::Final(protocol(endpoint, path, &format!("{e}"))))
    }

    fn transport_failure(&self, error: &reqwest::Error) -> Failed {
        // A refused connection never reached a server; anything later may have.
        Failed::Retry { cause: transport_cause(error, self.config.request_timeout), maybe_applied: !error.is_connect() }
    }

    /// Turns a non-2xx answer into a final error, or a retry for 503/429.
    async fn refusal(&self, endpoint: &str, path: &str, mut response: reqwest::Response) -> Failed {
        let status = response.status().as_u16();
        let body = read_body(&mut response, 64 << 10).await.unwrap_or_default();
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let message = parsed.as_ref().map_or_else(|| String::from_utf8_lossy(&body).trim().to_owned(), |b| b.text());
        if status == 503 || status == 429 {
            // "request timed out" (etcd's and Haven's words alike) leaves the
            // outcome unknown; "no leader", "too many requests" and the like
            // say the request was not carried out.
            let maybe_applied = message.contains("timed out");
            return Failed::Retry { cause: format!("HTTP {status}: {message}"), maybe_applied };
        }
        if path.starts_with("/v1/") || path.starts_with("/haven/v1/") {
            // Haven's own APIs: `{"error": ..., "field": ...}` or plain text, no gRPC code.
            return Failed::Final(ClientError::Api { endpoint: endpoint.to_owned(), status, message });
        }
        match parsed {
            Some(body) => {
                Failed::Final(ClientError::Server { endpoint: endpoint.to_owned(), status, code: body.code, message })
            }
            None => Failed::Final(protocol(endpoint, path, &format!("HTTP {status}: {message}"))),
        }
    }
}

/// etcd's error body: `{"error": "...", "message": "...", "code": N}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i32,
}

impl ErrorBody {
    fn text(&self) -> String {
        if self.message.is_empty() { self.error.clone() } else { self.message.clone() }
    }
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_body(response: &mut reqwest::Response, bytes_max: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > bytes_max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|e| ClientError::usage(format!("cannot encode the request: {e}")))
}

fn protocol(endpoint: &str, path: &str, detail: &str) -> ClientError {
    ClientError::Protocol { endpoint: endpoint.to_owned(), detail: format!("{path}: {detail}") }
}

/// A short cause for an operator: the innermost I/O error when there is one.
pub(crate) fn transport_cause(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", millis(timeout));
    }
    let mut source: Option<&dyn std::error::Error> = Some(error);
    let mut innermost = error.to_string();
    while let Some(current) = source {
        innermost = current.to_string();
        source = current.source();
    }
    innermost
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
