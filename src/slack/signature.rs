//! Verifying that a request came from Slack: v0 HMAC-SHA256 over `v0:{timestamp}:{body}`,
//! compared in constant time, timestamp within five minutes (slack-morphism's verifier).

use axum::http::HeaderMap;
use slack_morphism::prelude::SlackSigningSecret;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("request is not signed")]
    Unsigned,
    #[error("request signature does not verify or is stale")]
    Invalid,
}

pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return Err(SignatureError::Unsigned);
    };
    let body = std::str::from_utf8(body).map_err(|_| SignatureError::Invalid)?;
    SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.to_owned()))
        .verify(signature, body, timestamp)
        .map_err(|_| SignatureError::Invalid)
}
