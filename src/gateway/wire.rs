//! What the gateway puts on the wire: the Users API's error body (`{"code": <gRPC status>,
//! "message", "details": []}`), OAuth 2.0 errors on the token endpoints (RFC 6749 §5.2), and
//! 1Password's own answers passed on as they came.

use std::future::Future;
use std::time::Instant;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::state::AppState;
use crate::onepassword::{grpc, OpError, Relayed};

/// A refusal, in the words the endpoint's published contract uses.
#[derive(Debug)]
pub enum Refused {
    /// A Users API error: the HTTP status, the gRPC code its body carries, its message.
    Op {
        status: StatusCode,
        code: i64,
        message: String,
        retry_after: Option<u64>,
    },
    /// An OAuth 2.0 error (`invalid_client`, `invalid_request`, …) of the token endpoints.
    OAuth {
        status: StatusCode,
        error: &'static str,
    },
}

impl Refused {
    /// Asks the caller to wait this many seconds (at least 1) before trying again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Refused::Op { retry_after, .. } = &mut self {
            *retry_after = Some(seconds.max(1));
        }
        self
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Op {
                status,
                code,
                message,
                retry_after,
            } => {
                let response = (status, Json(grpc::error_body(code, &message))).into_response();
                match retry_after {
                    Some(seconds) => with_retry_after(response, seconds),
                    None => response,
                }
            }
            Refused::OAuth { status, error } => {
                let mut response = (status, Json(json!({ "error": error }))).into_response();
                if status == StatusCode::UNAUTHORIZED {
                    // RFC 6749 §5.2: a 401 for client authentication names the scheme to use.
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                }
                response
            }
        }
    }
}

/// An error as the Users API sends it, with the gRPC code its HTTP status carries.
pub fn op_error(status: StatusCode, message: &str) -> Refused {
    op_error_coded(status, grpc::for_http(status.as_u16()), message)
}

/// An error with its own gRPC code (1Password's, passed on, or one the status does not imply).
pub fn op_error_coded(status: StatusCode, code: i64, message: &str) -> Refused {
    Refused::Op {
        status,
        code,
        message: message.to_owned(),
        retry_after: None,
    }
}

pub fn oauth_error(status: StatusCode, error: &'static str) -> Refused {
    Refused::OAuth { status, error }
}

fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// 1Password's answer as it came: its status, its body and its `Retry-After`.
pub fn relayed(answer: Relayed) -> Response {
    if answer.status == 401 {
        // 1Password refused countersign's own credentials even with a fresh token: that is
        // the operator's to fix, not the integration's (its token was fine).
        return op_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "countersign's own 1Password credentials were refused; an operator must check OP_CLIENT_ID and OP_CLIENT_SECRET",
        )
        .into_response();
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        answer.body,
    )
        .into_response();
    match answer.retry_after {
        Some(after) => with_retry_after(response, after.as_secs()),
        None => response,
    }
}

/// countersign could not get an answer from 1Password at all.
pub fn unanswered(error: &OpError) -> Refused {
    match error {
        OpError::NotFound => op_error(StatusCode::NOT_FOUND, "user not found"),
        OpError::Transient { retry_after, .. } => op_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("countersign could not reach 1Password: {error}"),
        )
        .retry_after(retry_after.map_or(1, |d| d.as_secs())),
        OpError::Permanent { .. } => op_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("countersign's call to 1Password failed: {error}"),
        ),
    }
}

/// Runs one gateway request's `work` and answers it, counted by operation and HTTP status and
/// timed (a write's time is mostly the wait for humans).
pub async fn counted(
    state: &AppState,
    operation: &str,
    work: impl Future<Output = Result<Response, Refused>>,
) -> Response {
    let started = Instant::now();
    let response = work.await.unwrap_or_else(IntoResponse::into_response);
    let status = response.status();
    state.metrics.increment(
        "countersign_gateway_requests_total",
        &[("operation", operation), ("status", status.as_str())],
    );
    state.metrics.observe(
        "countersign_gateway_request_seconds",
        &[("operation", operation)],
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Whether a `User-Agent` names its integration as `<Product>/<version>`, as every reference
/// page asks.
pub fn names_a_product(agent: &str) -> bool {
    agent
        .split_once('/')
        .is_some_and(|(product, version)| !product.trim().is_empty() && !version.trim().is_empty())
}
