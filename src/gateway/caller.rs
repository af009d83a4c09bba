//! Who is calling the gateway and what they may do: the `User-Agent` rule, the bearer token
//! an integration got from our token endpoint, the account and version in the path, the
//! client's permissions and its rate limit, checked in that order (the stand-in's order).

use axum::http::{header, HeaderMap, StatusCode};
use chrono::Utc;

use super::wire::{names_a_product, op_error, Refused};
use crate::app::state::AppState;
use crate::ledger::{GatewayClient, GatewayPermission};

/// The `User-Agent`, when it names a product and version; otherwise the 400 the API answers.
pub fn product_agent(headers: &HeaderMap) -> Result<String, Refused> {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if names_a_product(agent) {
        Ok(agent.to_owned())
    } else {
        Err(op_error(
            StatusCode::BAD_REQUEST,
            "User-Agent must name the integration as <Product>/<version>",
        ))
    }
}

/// The version segment of a gateway path, as countersign calls 1Password at it.
pub fn check_version(state: &AppState, version: &str) -> Result<(), Refused> {
    let served = state.onepassword.api_version();
    if version == served {
        Ok(())
    } else {
        Err(op_error(
            StatusCode::NOT_FOUND,
            &format!("this Users API version is not served here; countersign answers at /{served}"),
        ))
    }
}

/// Who calls a users endpoint, allowed `permission`: see [`authenticate`], then the client
/// must have the permission and be within its rate limit.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    path: (&str, &str),
    permission: GatewayPermission,
) -> Result<(GatewayClient, String), Refused> {
    let (client, agent) = authenticate(state, headers, path).await?;
    permit(state, &client, permission)?;
    Ok((client, agent))
}

/// Who calls a users endpoint: their `User-Agent` and client, once the agent names a product,
/// the version is served, the bearer token is live and the account is countersign's.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    (version, account): (&str, &str),
) -> Result<(GatewayClient, String), Refused> {
    let agent = product_agent(headers)?;
    check_version(state, version)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let unauthenticated = || op_error(StatusCode::UNAUTHORIZED, "invalid or expired token");
    let Some(token) = token else {
        return Err(unauthenticated());
    };
    let client = state
        .ledger
        .gateway_client_by_token(token, Utc::now())
        .await
        .map_err(|error| {
            tracing::error!(%error, "the ledger could not check a gateway token");
            op_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "countersign could not check the token; try again",
            )
        })?
        .ok_or_else(unauthenticated)?;
    if account != state.onepassword.account().as_str() {
        return Err(op_error(StatusCode::NOT_FOUND, "account not found"));
    }
    Ok((client, agent))
}

/// The client may ask for `permission`, and is within its rate limit.
pub fn permit(
    state: &AppState,
    client: &GatewayClient,
    permission: GatewayPermission,
) -> Result<(), Refused> {
    if !client.may(permission) {
        return Err(op_error(
            StatusCode::FORBIDDEN,
            &format!(
                "permission denied: this integration was not given the {} permission",
                permission.as_str()
            ),
        ));
    }
    within_rate_limit(state, client)
}

/// The client's share of `API_RATE_LIMIT`, as an API token's.
pub fn within_rate_limit(state: &AppState, client: &GatewayClient) -> Result<(), Refused> {
    state
        .rate_limiter
        .take(&client.id, std::time::Instant::now())
        .map_err(|wait| {
            op_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit exceeded for this integration",
            )
            .retry_after(wait.as_secs())
        })
}
