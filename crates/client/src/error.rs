//! Everything that can go wrong talking to a cluster, each case with what
//! to do about it.
//!
//! In: transport failures, etcd error bodies, bad user input. Out: a
//! [`ClientError`] whose message names the endpoint(s), the cause and a next
//! step for the operator.

use std::fmt;
use thiserror::Error;

/// Why one attempt at one endpoint failed (kept to report them all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptFailure {
    pub endpoint: String,
    pub cause: String,
}

impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.endpoint, self.cause)
    }
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(
        "no endpoints given: pass --endpoints http://127.0.0.1:2379 (comma-separated for several) or set HAVEN_ENDPOINTS"
    )]
    NoEndpoints,

    #[error("invalid endpoint `{endpoint}`: {reason}; write endpoints like http://127.0.0.1:2379")]
    BadEndpoint { endpoint: String, reason: String },

    #[error(
        "no endpoint answered: tried {} — is the cluster running? start one with `haven up`, or pass the right --endpoints",
        list(.attempts)
    )]
    Unreachable { attempts: Vec<AttemptFailure> },

    #[error(
        "{endpoint} did not answer within {timeout_ms} ms and the request changes data, so it was not resent: it may or \
         may not have been applied. Read the data to check before retrying, or raise --timeout-ms"
    )]
    OutcomeUnknown { endpoint: String, timeout_ms: u64 },

    #[error("{endpoint} refused the request: {message} (HTTP {status}, gRPC code {code}){}", hint(.message))]
    Server { endpoint: String, status: u16, code: i32, message: String },

    #[error("{endpoint} refused the request: {message} (HTTP {status})")]
    Api { endpoint: String, status: u16, message: String },

    #[error(
        "{endpoint} answered something that is not etcd v3 JSON ({detail}): is it a client URL of an etcd or Haven \
         member (not a peer URL)?"
    )]
    Protocol { endpoint: String, detail: String },

    #[error("lease {id:x} not found: it expired or was revoked; grant a new one with `haven lease grant TTL`")]
    LeaseNotFound { id: i64 },

    #[error("the watch was canceled by the server: {reason}")]
    WatchCanceled { reason: String },

    #[error("{0}")]
    Usage(String),

    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    #[error("{0}")]
    Bench(String),

    #[error("interrupted")]
    Interrupted,
}

fn list(attempts: &[AttemptFailure]) -> String {
    let shown: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// A next step for etcd's error messages an operator meets most.
fn hint(message: &str) -> &'static str {
    const HINTS: &[(&str, &str)] = &[
        (
            "required revision has been compacted",
            ": that revision is gone; ask for a newer one (see the header revision of `haven kv get`)",
        ),
        ("required revision is a future revision", ": that revision does not exist yet; ask for an older one"),
        ("requested lease not found", ": the lease expired or was revoked; see `haven lease ls`"),
        ("member not found", ": see the member ids with `haven member ls`"),
        ("no leader", ": the cluster has no leader; is a majority of its members running? see `haven status`"),
        ("too many requests", ": the server is overloaded; retry later or with fewer clients"),
        ("in sync with leader", ": the learner has not caught up yet; wait and retry the promotion"),
        ("already exist", ": a member with that peer URL exists; see `haven member ls`"),
        ("unhealthy cluster", ": another membership change is in progress or a member is down; see `haven status`"),
    ];
    HINTS.iter().find(|(needle, _)| message.contains(needle)).map_or("", |(_, hint)| hint)
}

impl ClientError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        ClientError::Usage(message.into())
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io { context: context.into(), source }
    }

    /// The error etcd's gateway puts in a stream (`{"error": {...}}`), or a
    /// protocol error when the stream ended with neither result nor error.
    pub(crate) fn from_stream_error(endpoint: &str, error: Option<serde_json::Value>) -> Self {
        let Some(error) = error else {
            return ClientError::Protocol { endpoint: endpoint.to_owned(), detail: "an empty stream item".to_owned() };
        };
        let field = |name: &str| error.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0);
        let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("(no message)").to_owned();
        ClientError::Server {
            endpoint: endpoint.to_owned(),
            status: u16::try_from(field("http_code")).unwrap_or(0),
            code: i32::try_from(field("grpc_code")).unwrap_or(0),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_lists_every_attempt_and_says_what_to_do() {
        let error = ClientError::Unreachable {
            attempts: vec![
                AttemptFailure { endpoint: "http://127.0.0.1:1".into(), cause: "connection refused".into() },
                AttemptFailure { endpoint: "http://127.0.0.1:2".into(), cause: "timed out after 10 ms".into() },
            ],
        };
        let text = error.to_string();
        assert!(text.contains("http://127.0.0.1:1 (connection refused), http://127.0.0.1:2 (timed out"), "{text}");
        assert!(text.contains("haven up"), "{text}");
    }

    #[test]
    fn server_errors_carry_a_hint_when_one_is_known() {
        let error = |message: &str| ClientError::Server {
            endpoint: "http://e".into(),
            status: 400,
            code: 11,
            message: message.into(),
        };
        assert!(error("etcdserver: mvcc: required revision has been compacted").to_string().contains("newer one"));
        assert!(error("etcdserver: something new").to_string().ends_with("(HTTP 400, gRPC code 11)"));
    }

    #[test]
    fn stream_errors_keep_code_and_message() {
        let body = serde_json::json!({"grpc_code": 14, "http_code": 503, "message": "etcdserver: no leader"});
        match ClientError::from_stream_error("http://e", Some(body)) {
            ClientError::Server { status, code, message, .. } => {
                assert_eq!((status, code, message.as_str()), (503, 14, "etcdserver: no leader"))
            }
            other => panic!("expected a server error, got {other:?}"),
        }
    }
}
