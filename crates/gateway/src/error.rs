//! What the gateway answers when a request fails.
//!
//! In: a backend error, a body that is not etcd JSON, or a body too large.
//! Out: etcd's error body `{"error": msg, "message": msg, "code": grpc_code}`
//! with the HTTP status etcd 3.4's grpc-gateway gives that gRPC code, and
//! etcd's exact message where etcd has one.

use crate::backend::BackendError;
use crate::json::JsonError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use haven_store::StoreError;
use serde::Serialize;
use thiserror::Error;

/// gRPC status codes etcd uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum GrpcCode {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    FailedPrecondition = 9,
    ResourceExhausted = 8,
    OutOfRange = 11,
    Unavailable = 14,
}

impl GrpcCode {
    /// grpc-gateway v1's `HTTPStatusFromCode`, which etcd 3.4 uses.
    pub fn http_status(self) -> StatusCode {
        match self {
            GrpcCode::InvalidArgument | GrpcCode::OutOfRange => StatusCode::BAD_REQUEST,
            GrpcCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            GrpcCode::NotFound => StatusCode::NOT_FOUND,
            GrpcCode::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            GrpcCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            GrpcCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GatewayError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The body (or one streamed message) exceeds the limit; refused
    /// before it is read whole.
    #[error("etcdserver: request is too large")]
    BodyTooLarge,
    /// The client stopped sending mid-body.
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("etcdserver: {0}")]
    Invalid(String),
}

impl GatewayError {
    pub fn code(&self) -> GrpcCode {
        use StoreError as S;
        match self {
            GatewayError::Backend(BackendError::Store(e)) => match e {
                S::Compacted { .. } | S::FutureRevision { .. } | S::LeaseTtlTooLarge => GrpcCode::OutOfRange,
                S::LeaseNotFound => GrpcCode::NotFound,
                S::LeaseExists => GrpcCode::FailedPrecondition,
                S::NoSpace => GrpcCode::ResourceExhausted,
                S::EmptyKey | S::TooManyOps | S::DuplicateKey | S::KeyNotFound => GrpcCode::InvalidArgument,
                S::ValueProvided | S::LeaseProvided | S::RequestTooLarge => GrpcCode::InvalidArgument,
            },
            GatewayError::Backend(b) => match b {
                BackendError::Store(_) => unreachable!("matched above"),
                BackendError::Timeout | BackendError::NoLeader => GrpcCode::Unavailable,
                BackendError::UnhealthyCluster | BackendError::Stopped | BackendError::Removed => GrpcCode::Unavailable,
                BackendError::TooManyRequests => GrpcCode::ResourceExhausted,
                BackendError::MemberNotFound => GrpcCode::NotFound,
                BackendError::PeerUrlExists | BackendError::LearnerNotReady => GrpcCode::FailedPrecondition,
                BackendError::MemberNotLearner | BackendError::MemberRefused(_) => GrpcCode::FailedPrecondition,
                BackendError::InvalidPeerUrl(_) => GrpcCode::InvalidArgument,
            },
            GatewayError::Json(_) | GatewayError::BodyTooLarge | GatewayError::Body(_) | GatewayError::Invalid(_) => {
                GrpcCode::InvalidArgument
            }
        }
    }

    /// etcd's message: its gRPC layer prefixes the store's mvcc errors.
    pub fn message(&self) -> String {
        match self {
            GatewayError::Backend(BackendError::Store(
                e @ (StoreError::Compacted { .. } | StoreError::FutureRevision { .. }),
            )) => {
                format!("etcdserver: {e}")
            }
            other => other.to_string(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        let message = self.message();
        ErrorBody { error: message.clone(), message, code: self.code() as u16 }
    }
}

/// etcd's unary error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    pub code: u16,
}

/// How grpc-gateway reports an error inside a stream (watch, keep-alive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StreamError {
    pub grpc_code: u16,
    pub http_code: u16,
    pub message: String,
    pub http_status: String,
}

impl From<&GatewayError> for StreamError {
    fn from(e: &GatewayError) -> StreamError {
        let status = e.code().http_status();
        StreamError {
            grpc_code: e.code() as u16,
            http_code: status.as_u16(),
            message: e.message(),
            http_status: status.canonical_reason().unwrap_or("").to_string(),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).expect("an error body always serializes");
        (self.code().http_status(), [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}
