//! The gateway's OAuth 2.0 endpoints, as 1Password's: client credentials by HTTP Basic, a
//! bearer token that lives 900 s, and revocation (RFC 7009) that answers 200 even for a
//! token it never issued.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::Utc;
use serde_json::json;

use super::caller::{check_version, product_agent, within_rate_limit};
use super::wire::{counted, oauth_error, op_error, Refused};
use crate::app::state::AppState;
use crate::ledger::GatewayClient;

/// How long an access token lives, as 1Password's do.
pub const TOKEN_LIFETIME_SECS: i64 = 900;

/// The most a token or revoke form may be; both are a few short fields.
const FORM_LIMIT: usize = 4 * 1024;

/// Request an access token: form `grant_type=client_credentials`, optional `scope=openid`,
/// the client's id and secret by HTTP Basic.
#[utoipa::path(
    post,
    path = "/{version}/users/oauth2/token",
    tag = "users-api-gateway",
    params(("version" = String, Path, description = "OP_API_VERSION, e.g. v1beta1")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "grant_type=client_credentials, optional scope=openid"),
    responses(
        (status = 200, description = "`{access_token, token_type: bearer, expires_in: 900}`"),
        (status = 400, description = "unsupported_grant_type, invalid_scope or invalid_request"),
        (status = 401, description = "invalid_client"),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    counted(&state, "token", issue(&state, &version, &headers, &body)).await
}

async fn issue(
    state: &AppState,
    version: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refused> {
    let (client, form) = client_and_form(state, version, headers, body).await?;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ));
    }
    if form.get("scope").is_some_and(|scope| scope != "openid") {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_scope"));
    }
    within_rate_limit(state, &client)?;
    let lifetime = chrono::Duration::seconds(TOKEN_LIFETIME_SECS);
    let token = state
        .ledger
        .issue_gateway_token(&client, lifetime, Utc::now())
        .await
        .map_err(unavailable)?;
    tracing::info!(client = %client.name, "gateway access token issued");
    let mut response = Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
    }))
    .into_response();
    // RFC 6749 §5.1: a response carrying a token is never cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Revoke an access token: form `token=`, the client by HTTP Basic.
#[utoipa::path(
    post,
    path = "/{version}/users/oauth2/revoke",
    tag = "users-api-gateway",
    params(("version" = String, Path, description = "OP_API_VERSION, e.g. v1beta1")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "token=<access token>"),
    responses(
        (status = 200, description = "Revoked, or never issued to this client"),
        (status = 400, description = "invalid_request: no token"),
        (status = 401, description = "invalid_client"),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    counted(
        &state,
        "revoke",
        withdraw(&state, &version, &headers, &body),
    )
    .await
}

async fn withdraw(
    state: &AppState,
    version: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refused> {
    let (client, form) = client_and_form(state, version, headers, body).await?;
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request"));
    };
    within_rate_limit(state, &client)?;
    state
        .ledger
        .revoke_gateway_token(&client, token, Utc::now())
        .await
        .map_err(unavailable)?;
    Ok(StatusCode::OK.into_response())
}

/// What both OAuth endpoints check first, in the stand-in's order: the `User-Agent`, the
/// version, the client's credentials; then the form they sent.
async fn client_and_form(
    state: &AppState,
    version: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(GatewayClient, HashMap<String, String>), Refused> {
    product_agent(headers)?;
    check_version(state, version)?;
    let client = authenticate(state, headers).await?;
    Ok((client, form(body)?))
}

/// The live client whose id and secret came by HTTP Basic.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<GatewayClient, Refused> {
    let invalid = || oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let (id, secret) = basic_credentials(headers).ok_or_else(invalid)?;
    state
        .ledger
        .gateway_client_by_secret(&id, &secret)
        .await
        .map_err(unavailable)?
        .ok_or_else(invalid)
}

/// `Authorization: Basic base64(id:secret)`, decoded; `None` when it is not that.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?
        .trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    // RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
    let id = form_decoded(id)?;
    let secret = form_decoded(secret)?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

fn form_decoded(part: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={part}"))
        .ok()?
        .pop()
        .map(|(_, value)| value)
}

fn form(body: &[u8]) -> Result<HashMap<String, String>, Refused> {
    if body.len() > FORM_LIMIT {
        return Err(oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|_| oauth_error(StatusCode::BAD_REQUEST, "invalid_request"))
}

fn unavailable(error: sqlx::Error) -> Refused {
    tracing::error!(%error, "the ledger could not serve a gateway token request");
    op_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "countersign could not record the request; try again",
    )
}
