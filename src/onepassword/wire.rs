//! 1Password's answers read into our errors: a body's gRPC status sorts an error into not
//! found, transient (worth retrying, with its `Retry-After`) or permanent.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;

use super::model::{grpc, ErrorBody, OpError};

pub(super) fn transport_error(error: reqwest::Error) -> OpError {
    let what = if error.is_timeout() {
        "timed out"
    } else {
        "could not be reached"
    };
    OpError::Transient {
        message: format!("1Password {what}: {}", without_url(&error)),
        retry_after: None,
        throttled: false,
    }
}

/// reqwest's message without the URL, which is ours and only noise.
fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = error.to_string();
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    last
}

/// `Retry-After` in seconds, as sent; callers cap it.
pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Whether an error is worth retrying: by HTTP status, or by the gRPC status of its body
/// (a gateway may send UNAVAILABLE with any HTTP status).
fn is_transient(status: StatusCode, code: Option<i64>) -> bool {
    let by_status = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
    let by_code = matches!(
        code,
        Some(
            grpc::UNAVAILABLE | grpc::RESOURCE_EXHAUSTED | grpc::DEADLINE_EXCEEDED | grpc::ABORTED
        )
    );
    by_status || by_code
}

pub(super) async fn parse<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, OpError> {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = response.bytes().await.map_err(transport_error)?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| OpError::Transient {
            message: format!("1Password sent an answer countersign cannot read: {e}"),
            retry_after: None,
            throttled: false,
        });
    }
    let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let code = error.code();
    let message = error
        .message()
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
    if status == StatusCode::NOT_FOUND || code == Some(grpc::NOT_FOUND) {
        return Err(OpError::NotFound);
    }
    if is_transient(status, code) {
        return Err(OpError::Transient {
            message: format!("{} {message}", status.as_u16()),
            retry_after,
            throttled: status == StatusCode::TOO_MANY_REQUESTS
                || code == Some(grpc::RESOURCE_EXHAUSTED),
        });
    }
    Err(OpError::Permanent {
        status: status.as_u16(),
        code,
        message,
    })
}

/// 1Password's answer kept as it came, for the gateway to pass on: status, `Retry-After`
/// and body, unread.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl Relayed {
    pub(super) async fn read(response: reqwest::Response) -> Result<Self, OpError> {
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(Self {
            status,
            retry_after,
            body,
        })
    }
}
