//! The gateway's users endpoints. Reads pass through to 1Password live, with the caller's
//! parameters and paging; `:suspend` and `:reactivate` become proposals, and the answer is how
//! the proposal ended (or a 503 to retry while humans decide).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::caller::{authenticate, authorize, permit};
use super::wire::{counted, op_error, op_error_coded, relayed, unanswered, Refused};
use crate::app::gateway::{self, Ending, GatewayWrite};
use crate::app::intake::IntakeError;
use crate::app::state::AppState;
use crate::domain::{Action, OnePasswordUserId, Proposal, Status};
use crate::ledger::GatewayPermission;
use crate::onepassword::grpc;

/// How soon an integration told to wait should ask again: its next call waits again anyway.
const RETRY_AFTER_SECS: u64 = 1;

/// List users, answered by 1Password with the caller's `filter`, `max_page_size` and
/// `page_token`.
#[utoipa::path(
    get,
    path = "/{version}/accounts/{account}/users",
    tag = "users-api-gateway",
    params(
        ("version" = String, Path, description = "OP_API_VERSION"),
        ("account" = String, Path, description = "OP_ACCOUNT_ID"),
        ("filter" = Option<String>, Query, description = "user.isActive() or user.isSuspended()"),
        ("max_page_size" = Option<u32>, Query, description = "1 to 1000, default 25"),
        ("page_token" = Option<String>, Query, description = "next_page_token of the previous page"),
    ),
    responses((status = 200, description = "A page of users, as 1Password answered it"))
)]
pub async fn list(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    counted(&state, "list", list_users(&state, path, query, &headers)).await
}

async fn list_users(
    state: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
) -> Result<Response, Refused> {
    let Path((version, account)) = path.map_err(unreadable_path)?;
    let path = (version.as_str(), account.as_str());
    authorize(state, headers, path, GatewayPermission::ListUsers).await?;
    let query =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.as_deref().unwrap_or_default())
            .map_err(|_| op_error(StatusCode::BAD_REQUEST, "the query string cannot be parsed"))?;
    match state.onepassword.relay_list(&query).await {
        Ok(answer) => Ok(relayed(answer)),
        Err(error) => Err(unanswered(&error)),
    }
}

/// Get a user, as 1Password answers it now.
#[utoipa::path(
    get,
    path = "/{version}/accounts/{account}/users/{user}",
    tag = "users-api-gateway",
    params(
        ("version" = String, Path, description = "OP_API_VERSION"),
        ("account" = String, Path, description = "OP_ACCOUNT_ID"),
        ("user" = String, Path, description = "The user's id"),
    ),
    responses((status = 200, description = "The user, as 1Password answered"), (status = 404, description = "No such user"))
)]
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    counted(&state, "get", get_user(&state, path, &headers)).await
}

async fn get_user(
    state: &AppState,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: &HeaderMap,
) -> Result<Response, Refused> {
    let Path((version, account, user)) = path.map_err(unreadable_path)?;
    let path = (version.as_str(), account.as_str());
    authorize(state, headers, path, GatewayPermission::GetUser).await?;
    let id = OnePasswordUserId::parse(&user)
        .map_err(|_| op_error(StatusCode::NOT_FOUND, "user not found"))?;
    live_user(state, &id).await
}

/// Suspend or reactivate a user: proposed, decided in Slack, then done by countersign.
#[utoipa::path(
    post,
    path = "/{version}/accounts/{account}/users/{user}",
    tag = "users-api-gateway",
    params(
        ("version" = String, Path, description = "OP_API_VERSION"),
        ("account" = String, Path, description = "OP_ACCOUNT_ID"),
        ("user" = String, Path, description = "`ID:suspend` or `ID:reactivate`"),
    ),
    responses(
        (status = 200, description = "Done: the user, as 1Password answered"),
        (status = 403, description = "Denied in Slack (code 7), or the client lacks the permission"),
        (status = 409, description = "Expired, cancelled or superseded (code 10)"),
        (status = 503, description = "Awaiting approval in Slack (code 14); retry after Retry-After"),
    )
)]
pub async fn act(
    State(state): State<AppState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let action = path.as_ref().ok().and_then(|Path((_, _, user))| verb(user));
    let operation = match action {
        Some(Action::Suspend) => "suspend",
        Some(Action::Restore) => "reactivate",
        None => "other",
    };
    counted(
        &state,
        operation,
        write_user(&state, path, action, &headers),
    )
    .await
}

async fn write_user(
    state: &AppState,
    path: Result<Path<(String, String, String)>, PathRejection>,
    action: Option<Action>,
    headers: &HeaderMap,
) -> Result<Response, Refused> {
    let Path((version, account, user)) = path.map_err(unreadable_path)?;
    let path = (version.as_str(), account.as_str());
    let (client, agent) = authenticate(state, headers, path).await?;
    let Some(action) = action else {
        return Err(op_error(StatusCode::NOT_FOUND, "not found"));
    };
    permit(state, &client, GatewayPermission::to(action))?;
    let id = user.rsplit_once(':').map_or("", |(id, _)| id);
    let id = OnePasswordUserId::parse(id)
        .map_err(|_| op_error(StatusCode::NOT_FOUND, "user not found"))?;
    let write = GatewayWrite {
        client: &client,
        action,
        user: id.clone(),
        user_agent: &agent,
    };
    match gateway::act(state, write).await {
        Ok(Ending::Executed(_)) => live_user(state, &id).await,
        Ok(ending) => Err(answer(ending)),
        Err(error) => Err(refused_intake(&error)),
    }
}

/// The action a `POST …/users/{user}` asks for: `ID:suspend` or `ID:reactivate`.
fn verb(user: &str) -> Option<Action> {
    match user.rsplit_once(':') {
        Some((_, "suspend")) => Some(Action::Suspend),
        Some((_, "reactivate")) => Some(Action::Restore),
        _ => None,
    }
}

/// A path whose segments do not decode (say, percent-encoded bytes that are not UTF-8).
fn unreadable_path(_: PathRejection) -> Refused {
    op_error(StatusCode::BAD_REQUEST, "the path cannot be read")
}

/// The user as 1Password has them now.
async fn live_user(state: &AppState, id: &OnePasswordUserId) -> Result<Response, Refused> {
    match state.onepassword.relay_get(id).await {
        Ok(answer) => Ok(relayed(answer)),
        Err(error) => Err(unanswered(&error)),
    }
}

/// How a proposal that did not execute ended, as a Users API error.
fn answer(ending: Ending) -> Refused {
    match ending {
        Ending::Denied(p) => op_error(StatusCode::FORBIDDEN, &denied(&p)),
        Ending::Aborted(p) => op_error(StatusCode::CONFLICT, &aborted(&p)),
        Ending::Failed(p) => failed(&p),
        Ending::Undecided(p) => {
            op_error(StatusCode::SERVICE_UNAVAILABLE, &undecided(&p)).retry_after(RETRY_AFTER_SECS)
        }
        Ending::Executed(p) => {
            unreachable!("an executed proposal {} is answered with its user", p.id)
        }
    }
}

fn denied(p: &Proposal) -> String {
    match &p.denial {
        Some(denial) => format!(
            "denied in Slack by {}: {} (proposal {})",
            denial.name,
            denial.reason.as_str(),
            p.id
        ),
        None => format!("denied (proposal {})", p.id),
    }
}

fn aborted(p: &Proposal) -> String {
    match (p.status, p.superseded_by) {
        (Status::Superseded, Some(newer)) => format!(
            "superseded: a newer decision about this user ({newer}) was approved first (proposal {})",
            p.id
        ),
        (Status::Expired, _) => format!("expired: nobody decided in time (proposal {})", p.id),
        (Status::Cancelled, _) => format!("cancelled before a decision (proposal {})", p.id),
        (status, _) => format!("{} (proposal {})", status.as_str(), p.id),
    }
}

/// 1Password's own refusal, as it gave it; a failure it never answered (it stayed unreachable)
/// is countersign's to report.
fn failed(p: &Proposal) -> Refused {
    match &p.execution.refused_with {
        Some(refusal) => {
            let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let code = refusal
                .code
                .unwrap_or_else(|| grpc::for_http(refusal.status));
            op_error_coded(status, code, &refusal.message)
        }
        None => op_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!(
                "approved, but 1Password could not be reached to the end: {} (proposal {})",
                p.execution.last_error.as_deref().unwrap_or("no answer"),
                p.id
            ),
        ),
    }
}

fn undecided(p: &Proposal) -> String {
    match p.status {
        Status::Pending => format!("awaiting approval in Slack: proposal {}", p.id),
        _ => format!(
            "approved; countersign is asking 1Password now: proposal {}",
            p.id
        ),
    }
}

/// Why intake took nothing, in the Users API's words.
fn refused_intake(error: &IntakeError) -> Refused {
    match error {
        IntakeError::UnknownUser(_) => op_error(StatusCode::NOT_FOUND, "user not found"),
        IntakeError::OppositePending { .. } => op_error(StatusCode::CONFLICT, &error.to_string()),
        IntakeError::Ungovernable(message) => op_error_coded(
            StatusCode::BAD_REQUEST,
            // The user lacks what countersign needs to govern them safely.
            grpc::FAILED_PRECONDITION,
            message,
        ),
        IntakeError::OnePassword(error) => unanswered(error),
        IntakeError::IdempotencyConflict | IntakeError::Storage(_) => {
            tracing::error!(%error, "a gateway write could not be recorded");
            op_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "countersign could not record the request; try again",
            )
            .retry_after(RETRY_AFTER_SECS)
        }
    }
}
