//! The JSON body extractor for the API: 415 unless JSON, 413 over 64 KiB, 400 when it does not
//! parse, 422 with a JSON Pointer for unknown or ill-typed fields. All as problem JSON.

use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::problem::{FieldError, Problem};

pub const BODY_LIMIT: usize = 64 * 1024;

pub struct JsonBody<T> {
    pub value: T,
    /// Hex SHA-256 of the raw body, for idempotency keys.
    pub sha256: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send Content-Type: application/json",
            ));
        }
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    format!("the body must be at most {BODY_LIMIT} bytes"),
                )
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "Malformed JSON",
                e.to_string(),
            )
        })?;
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let value = serde_path_to_error::deserialize(value).map_err(|e| {
            Problem::invalid(vec![FieldError {
                pointer: pointer(e.path()),
                detail: e.inner().to_string(),
            }])
        })?;
        Ok(JsonBody { value, sha256 })
    }
}

/// serde_path_to_error's path (`user.email`, `evidence[0]`) as a JSON Pointer (`/user/email`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push_str(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        "/".into()
    } else {
        out
    }
}
