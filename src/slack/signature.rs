//! Verifying that a request came from Slack: v0 HMAC-SHA256 over `v0:{timestamp}:{body}`,
//! compared in constant time, timestamp within five minutes (slack-morphism's verifier). A
//! verified request is single use ([`single_use`]): its signature is recorded in the ledger, and
//! the same signature delivered again within the window does nothing.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::ledger::Ledger;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("request is not signed")]
    Unsigned,
    #[error("request signature does not verify or is stale")]
    Invalid,
}

/// How far from now a request's timestamp may be, either way (slack-morphism's verifier).
const WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// How much longer than the window a seen signature is remembered: replicas' clocks differ a
/// little, and one running slow still accepts a signature another has forgotten.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// The signature and timestamp headers, if both are there.
fn signed(headers: &HeaderMap) -> Option<(&str, &str)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Some((
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?,
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?,
    ))
}

pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let Some((signature, timestamp)) = signed(headers) else {
        return Err(SignatureError::Unsigned);
    };
    let body = std::str::from_utf8(body).map_err(|_| SignatureError::Invalid)?;
    SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.to_owned()))
        .verify(signature, body, timestamp)
        .map_err(|_| SignatureError::Invalid)
}

/// Makes a request [`verify`] accepted single use. `None` when this is the first delivery of
/// its signature (recorded now, in the ledger every replica shares): go on. Otherwise the
/// answer to give instead: `replayed()` for a signature seen before, or 503 when the ledger
/// could not record it (fail closed; nothing was done, and Slack or the person may retry).
pub async fn single_use(
    ledger: &Ledger,
    headers: &HeaderMap,
    replayed: impl FnOnce() -> Response,
) -> Option<Response> {
    let signed_at = signed(headers).and_then(|(signature, timestamp)| {
        let at = DateTime::<Utc>::from_timestamp(timestamp.parse().ok()?, 0)?;
        Some((signature, at))
    });
    let Some((signature, signed_at)) = signed_at else {
        return Some((StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response());
    };
    let sha256 = hex::encode(Sha256::digest(signature.as_bytes()));
    let now = Utc::now();
    match ledger
        .first_delivery(&sha256, signed_at, now, now - WINDOW - CLOCK_MARGIN)
        .await
    {
        Ok(true) => None,
        Ok(false) => {
            tracing::info!(%signed_at, "ignored a Slack request delivered again (same signature)");
            Some(replayed())
        }
        Err(error) => {
            tracing::error!(%error, "could not record a Slack request's signature");
            Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "countersign could not record the request; nothing was done",
                )
                    .into_response(),
            )
        }
    }
}
