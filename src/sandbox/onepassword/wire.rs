//! What the Users API puts on the wire besides users: its error body, the gRPC status numbers
//! it carries, and opaque page tokens; and the Events API's error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::onepassword::grpc;

/// The gRPC status a Users API error carries in its `code` field, by the HTTP status it is
/// sent with (e.g. a 403 carries code 7).
pub fn grpc_code(status: u16) -> i64 {
    grpc::for_http(status)
}

/// The Users API's error shape: `{"code": <gRPC status>, "message": "...", "details": []}`.
pub fn op_error(status: u16, message: &str) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (http, Json(grpc::error_body(grpc_code(status), message))).into_response()
}

/// 400 InvalidArgument, as the API answers a filter, page size or page token it refuses.
pub fn invalid_argument(message: &str) -> Response {
    op_error(400, message)
}

/// The Events API's error shape, its OpenAPI document's `Error` schema:
/// `{"Error": {"Message": "..."}}` (capitalised, unlike the Users API's).
pub fn events_error(status: u16, message: &str) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (http, Json(json!({ "Error": { "Message": message } }))).into_response()
}

/// A fresh opaque page token: random bytes in standard base64, as the real tokens look.
pub fn page_token() -> String {
    base64(&rand::random::<[u8; 18]>())
}

/// Standard base64 with padding, as the page tokens and Events API cursors are sent.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded);
        }
    }

    #[test]
    fn error_codes_are_grpc_numbers_not_http_statuses() {
        assert_eq!(grpc_code(403), 7);
        assert_eq!(grpc_code(400), 3);
        assert_eq!(grpc_code(404), 5);
        assert_eq!(grpc_code(500), 13);
    }
}
