//! The passkey routes: each link's page, the options its ceremony needs, and the answer the
//! browser's authenticator gives. Errors are problem JSON for the script and a closed page for
//! a person.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::pages;
use crate::api::body::JsonBody;
use crate::api::problem::Problem;
use crate::app::enrollment;
use crate::app::state::AppState;
use crate::app::step_up::{self, PageError};
use crate::domain::Vote;

impl From<PageError> for Problem {
    fn from(error: PageError) -> Self {
        let (status, code, title) = match &error {
            PageError::Unknown | PageError::NotConfigured => {
                (StatusCode::NOT_FOUND, "link_unknown", "No such link")
            }
            PageError::Used | PageError::Expired => {
                (StatusCode::GONE, "link_closed", "The link is closed")
            }
            PageError::TooManyAttempts => (
                StatusCode::TOO_MANY_REQUESTS,
                "link_attempts",
                "Too many attempts",
            ),
            PageError::NoCeremony => (StatusCode::CONFLICT, "no_ceremony", "No ceremony started"),
            PageError::NotVerified(_) => (
                StatusCode::BAD_REQUEST,
                "passkey_not_verified",
                "The passkey did not verify",
            ),
            PageError::PossiblyCloned => (
                StatusCode::FORBIDDEN,
                "passkey_possibly_cloned",
                "The passkey may be cloned",
            ),
            PageError::Refused(_) => (StatusCode::CONFLICT, "vote_refused", "The vote was refused"),
            PageError::Storage(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                "countersign could not record it",
            ),
        };
        Problem::new(status, code, title, error.to_string())
    }
}

/// The enrollment page of a one-time link.
#[utoipa::path(get, path = "/passkey/enroll/{token}", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The page", content_type = "text/html")))]
pub async fn enroll_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match enrollment::enrollment(&state, &token).await {
        Ok(link) => pages::enroll(&link.slack_user_id),
        Err(error) => pages::closed(&error.to_string()),
    }
}

/// The registration options (WebAuthn `PublicKeyCredentialCreationOptions`).
#[utoipa::path(post, path = "/passkey/enroll/{token}/options", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The options, as WebAuthn JSON"), (status = 410, body = Problem)))]
pub async fn enroll_options(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, Problem> {
    let options = enrollment::enrollment_options(&state, &token).await?;
    Ok(Json(json!(options)))
}

/// The new credential (WebAuthn `RegistrationResponseJSON`).
#[utoipa::path(post, path = "/passkey/enroll/{token}/finish", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    request_body(content = Object, description = "The authenticator's answer, as WebAuthn JSON"),
    responses((status = 200, description = "Registered"), (status = 400, body = Problem), (status = 410, body = Problem)))]
pub async fn enroll_finish(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: JsonBody<RegisterPublicKeyCredential>,
) -> Result<Json<Value>, Problem> {
    let id = enrollment::finish_enrollment(&state, &token, &body.value).await?;
    Ok(Json(json!({"credential_id": id})))
}

/// The page of a link to add another passkey: proves an existing one first.
#[utoipa::path(get, path = "/passkey/add/{token}", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The page", content_type = "text/html")))]
pub async fn add_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match enrollment::adding(&state, &token).await {
        Ok(link) => pages::add(&link.slack_user_id),
        Err(error) => pages::closed(&error.to_string()),
    }
}

/// The assertion options for a passkey the approver already has.
#[utoipa::path(post, path = "/passkey/add/{token}/options", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The options, as WebAuthn JSON"), (status = 410, body = Problem)))]
pub async fn add_options(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, Problem> {
    let options = enrollment::add_options(&state, &token).await?;
    Ok(Json(json!(options)))
}

/// The assertion with an existing passkey; answers the registration options for the new one.
#[utoipa::path(post, path = "/passkey/add/{token}/prove", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    request_body(content = Object, description = "The authenticator's answer, as WebAuthn JSON"),
    responses((status = 200, description = "The registration options, as WebAuthn JSON"), (status = 400, body = Problem), (status = 410, body = Problem)))]
pub async fn add_prove(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: JsonBody<PublicKeyCredential>,
) -> Result<Json<Value>, Problem> {
    let options = enrollment::add_prove(&state, &token, &body.value).await?;
    Ok(Json(json!(options)))
}

/// The new credential, kept only after an existing passkey was proved on this link.
#[utoipa::path(post, path = "/passkey/add/{token}/finish", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    request_body(content = Object, description = "The authenticator's answer, as WebAuthn JSON"),
    responses((status = 200, description = "Registered"), (status = 400, body = Problem), (status = 409, body = Problem), (status = 410, body = Problem)))]
pub async fn add_finish(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: JsonBody<RegisterPublicKeyCredential>,
) -> Result<Json<Value>, Problem> {
    let id = enrollment::add_finish(&state, &token, &body.value).await?;
    Ok(Json(json!({"credential_id": id})))
}

/// The vote page of a one-time link: what is being approved.
#[utoipa::path(get, path = "/passkey/vote/{token}", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The page", content_type = "text/html")))]
pub async fn vote_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match step_up::vote(&state, &token).await {
        Ok((_, proposal)) => pages::vote(&proposal),
        Err(error) => pages::closed(&error.to_string()),
    }
}

/// The assertion options (WebAuthn `PublicKeyCredentialRequestOptions`), limited to the link's
/// Slack user's passkeys.
#[utoipa::path(post, path = "/passkey/vote/{token}/options", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    responses((status = 200, description = "The options, as WebAuthn JSON"), (status = 410, body = Problem)))]
pub async fn vote_options(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, Problem> {
    let options = step_up::vote_options(&state, &token).await?;
    Ok(Json(json!(options)))
}

/// The assertion (WebAuthn `AuthenticationResponseJSON`): the vote counts if it verifies and
/// every rule a click obeys still holds.
#[utoipa::path(post, path = "/passkey/vote/{token}/finish", tag = "passkeys",
    params(("token" = String, Path, description = "The link's one-time token")),
    request_body(content = Object, description = "The authenticator's answer, as WebAuthn JSON"),
    responses((status = 200, description = "The vote counted"), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 410, body = Problem)))]
pub async fn vote_finish(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: JsonBody<PublicKeyCredential>,
) -> Result<Json<Value>, Problem> {
    let (proposal, vote) = step_up::finish_vote(&state, &token, &body.value).await?;
    let outcome = match vote {
        Vote::Approved => "Your vote is recorded; the proposal is approved.".to_owned(),
        Vote::Counted { count, required } => {
            format!("Your vote is recorded: {count} of {required} approvals.")
        }
    };
    Ok(Json(
        json!({"outcome": outcome, "status": proposal.status.as_str(), "approvals": proposal.approvals.len()}),
    ))
}

/// The pages' one script.
#[utoipa::path(get, path = "/passkey/passkey.js", tag = "passkeys",
    responses((status = 200, description = "The script", content_type = "text/javascript")))]
pub async fn script() -> impl IntoResponse {
    pages::script()
}
