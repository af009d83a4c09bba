//! `/v1/proposals`: automation proposes, reads and cancels. Tokens never approve.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::auth::{Caller, Proposer};
use super::body::JsonBody;
use super::problem::{FieldError, Problem};
use crate::app::decisions::{self, DecisionError};
use crate::app::intake::{self, IdempotencyKey, Intake, IntakeError, NewProposal, UserRef};
use crate::app::state::AppState;
use crate::domain::{
    check_free_text, Action, CallbackUrl, Email, OnePasswordUserId, Proposal, ProposalId,
    ProposalView, Reason, Refusal, Requester, Source, Status,
};
use crate::ledger::{ProposalQuery, Scope};
use crate::onepassword::OpError;

/// A request to act on a user. `user` names them by email or by 1Password id.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalBody {
    /// `suspend` or `restore`.
    #[schema(example = "suspend")]
    action: String,
    user: UserBody,
    reason: String,
    source: Source,
    #[serde(default)]
    callback_url: Option<String>,
}

/// Exactly one of `email` or `id`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

const MAX_FIELD: usize = 500;

fn field(pointer: &str, detail: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

/// Parses the body into a proposal request, collecting every problem at once.
fn parse(body: ProposalBody, callback_hosts: &[String]) -> Result<NewProposal, Vec<FieldError>> {
    let mut errors = vec![];
    let action = Action::parse(&body.action)
        .map_err(|e| errors.push(field("/action", e)))
        .ok();
    let user = match (body.user.email, body.user.id) {
        (Some(email), None) => Email::parse(&email)
            .map(UserRef::Email)
            .map_err(|e| errors.push(field("/user/email", e)))
            .ok(),
        (None, Some(id)) => OnePasswordUserId::parse(&id)
            .map(UserRef::Id)
            .map_err(|e| errors.push(field("/user/id", e)))
            .ok(),
        _ => {
            errors.push(field("/user", "give exactly one of email or id"));
            None
        }
    };
    let reason = Reason::parse(&body.reason)
        .map_err(|e| errors.push(field("/reason", e)))
        .ok();
    let source = body.source;
    if source.platform.trim().is_empty() {
        errors.push(field("/source/platform", "platform is required"));
    }
    let texts = [
        ("/source/platform", Some(&source.platform)),
        ("/source/alert_id", source.alert_id.as_ref()),
        ("/source/alert_url", source.alert_url.as_ref()),
        ("/source/rule", source.rule.as_ref()),
        ("/source/severity", source.severity.as_ref()),
    ];
    for (pointer, text) in texts {
        // Limits hold for what is stored: bytes, not characters.
        if text.is_some_and(|t| t.len() > MAX_FIELD) {
            errors.push(field(pointer, format!("at most {MAX_FIELD} bytes")));
        }
    }
    // The same free text on either engine: no control characters but newline and tab.
    let free_texts = texts
        .into_iter()
        .chain([("/callback_url", body.callback_url.as_ref())]);
    for (pointer, text) in free_texts {
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        if let Some(Err(e)) = text.map(|t| check_free_text(name, t)) {
            errors.push(field(pointer, e));
        }
    }
    if let Some(url) = &source.alert_url {
        // `|`, `<` and `>` would let the link's shown text differ from where it goes in Slack.
        let https = url::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
        if !https || url.contains(['|', '<', '>']) || url.contains(char::is_whitespace) {
            errors.push(field(
                "/source/alert_url",
                "alert_url must be an https:// URL without spaces, '|', '<' or '>'",
            ));
        }
    }
    let callback_url = body.callback_url.as_deref().and_then(|raw| {
        CallbackUrl::parse(raw)
            .and_then(|url| url.check_allowed(callback_hosts).map(|()| url))
            .map_err(|e| errors.push(field("/callback_url", e)))
            .ok()
    });
    match (action, user, reason, errors.is_empty()) {
        (Some(action), Some(user), Some(reason), true) => Ok(NewProposal {
            action,
            user,
            reason,
            source,
            callback_url,
        }),
        _ => Err(errors),
    }
}

fn scope_for(action: Action) -> Scope {
    match action {
        Action::Suspend => Scope::ProposeSuspend,
        Action::Restore => Scope::ProposeRestore,
    }
}

/// An `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
    sha256: String,
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Invalid Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(IdempotencyKey {
        token_id: caller.0.id.clone(),
        key: key.to_owned(),
        body_sha256: sha256,
    }))
}

/// One page of proposals, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProposalPage {
    proposals: Vec<ProposalView>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<ProposalId>,
}

/// Propose an action. Automation proposes; humans decide in Slack.
#[utoipa::path(
    post, path = "/v1/proposals", tag = "proposals",
    request_body = ProposalBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body within 24 h returns the same proposal")),
    responses(
        (status = 201, description = "Created. A suspend for a user whose restore is pending is created too: containment wins, and countersign ends the restore (denied by `system`, reason naming the new alert)", body = ProposalView),
        (status = 200, description = "Replayed, or folded into a pending proposal for the same user and action", body = ProposalView),
        (status = 400, description = "Unparseable JSON", body = Problem),
        (status = 401, description = "Missing or bad token", body = Problem),
        (status = 403, description = "The token lacks propose:<action>", body = Problem),
        (status = 409, description = "Idempotency conflict, or a restore for a user whose suspend is pending", body = Problem),
        (status = 413, description = "Body over 64 KiB", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid or unknown fields, or unknown 1Password user", body = Problem),
        (status = 502, description = "1Password refused the lookup (credentials or permissions); retrying will not help", body = Problem),
        (status = 503, description = "1Password unreachable; retry after Retry-After", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Proposer(caller): Proposer,
    headers: HeaderMap,
    body: JsonBody<ProposalBody>,
) -> Result<impl IntoResponse, Problem> {
    let key = idempotency_key(&headers, &caller, body.sha256)?;
    let new = parse(body.value, &state.callback_hosts).map_err(Problem::invalid)?;
    caller.require(scope_for(new.action))?;
    let requester = Requester::Integration {
        name: caller.0.name.clone(),
        token_id: caller.0.id.clone(),
    };
    let user_pointer = match &new.user {
        UserRef::Email(_) => "/user/email",
        UserRef::Id(_) => "/user/id",
    };
    match intake::propose(&state, requester, new, key, None).await {
        Ok(Intake::Created(proposal)) => {
            Ok((StatusCode::CREATED, Json(proposal.seen_by(caller.viewer()))))
        }
        Ok(Intake::FoldedInto(proposal) | Intake::Replayed(proposal)) => {
            Ok((StatusCode::OK, Json(proposal.seen_by(caller.viewer()))))
        }
        Err(IntakeError::IdempotencyConflict) => Err(Problem::conflict(
            "idempotency_conflict",
            "this Idempotency-Key was already used with a different body",
        )),
        Err(error @ IntakeError::OppositePending { .. }) => Err(Problem::conflict(
            "opposite_action_pending",
            error.to_string(),
        )),
        Err(IntakeError::UnknownUser(detail) | IntakeError::Ungovernable(detail)) => {
            Err(Problem::invalid(vec![field(user_pointer, detail)]))
        }
        Err(IntakeError::OnePassword(error @ OpError::Permanent { .. })) => {
            // Retrying will not help (credentials refused, a permission missing): say so.
            tracing::error!(%error, "1Password refused to look a proposal's user up");
            Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "onepassword_refused",
                "1Password refused",
                format!("1Password refused the lookup: {error}; nothing was recorded; an operator must fix the 1Password application"),
            ))
        }
        Err(IntakeError::OnePassword(error)) => {
            tracing::warn!(%error, "could not resolve a proposal's user");
            let retry = match error {
                OpError::Transient {
                    retry_after: Some(d),
                    ..
                } => d
                    .as_secs()
                    .clamp(1, state.timing.retry_after_cap.as_secs().max(1)),
                _ => 30,
            };
            Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "onepassword_unavailable",
                "1Password unavailable",
                format!("countersign could not look the user up in 1Password: {error}; nothing was recorded"),
            )
            .with_retry_after(retry))
        }
        Err(IntakeError::Storage(error)) => Err(error.into()),
    }
}

fn parse_id(raw: &str) -> Result<ProposalId, Problem> {
    ProposalId::parse(raw)
        .map_err(|_| Problem::not_found(format!("no proposal has the id {raw:?}")))
}

/// Whether the caller's token asked for this proposal, first or folded in.
fn is_own(caller: &Caller, proposal: &Proposal) -> bool {
    proposal
        .requesters()
        .any(|r| matches!(r, Requester::Integration { token_id, .. } if *token_id == caller.0.id))
}

/// Read one proposal: `read`, or a proposing token for its own.
#[utoipa::path(
    get, path = "/v1/proposals/{id}", tag = "proposals",
    params(("id" = String, Path, description = "Proposal id")),
    responses((status = 200, body = ProposalView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<ProposalView>, Problem> {
    let proposes = caller.0.has(Scope::ProposeSuspend) || caller.0.has(Scope::ProposeRestore);
    if !caller.0.has(Scope::Read) && !proposes {
        return Err(Problem::forbidden("read"));
    }
    let id = parse_id(&raw)?;
    let not_found = || Problem::not_found(format!("no proposal has the id {id}"));
    let proposal = state.ledger.proposal(id).await?.ok_or_else(not_found)?;
    // A proposing token sees its own proposals only; others do not learn they exist.
    if !caller.0.has(Scope::Read) && !is_own(&caller, &proposal) {
        return Err(not_found());
    }
    Ok(Json(proposal.seen_by(caller.viewer())))
}

/// List proposals, newest first (`read`).
#[utoipa::path(
    get, path = "/v1/proposals", tag = "proposals",
    params(
        ("status" = Option<Status>, Query, description = "Only this status"),
        ("action" = Option<Action>, Query, description = "Only this action"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = ProposalPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<ProposalPage>, Problem> {
    caller.require(Scope::Read)?;
    let mut errors = vec![];
    let mut query = ProposalQuery {
        limit: 50,
        ..ProposalQuery::default()
    };
    for (key, value) in &params {
        match key.as_str() {
            "status" => {
                query.status = Status::parse(value)
                    .map_err(|e| errors.push(field("/status", e)))
                    .ok()
            }
            "action" => {
                query.action = Action::parse(value)
                    .map_err(|e| errors.push(field("/action", e)))
                    .ok()
            }
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => query.limit = n,
                _ => errors.push(field("/limit", "limit is a whole number from 1 to 200")),
            },
            "cursor" => {
                query.before = ProposalId::parse(value)
                    .map_err(|e| errors.push(field("/cursor", e)))
                    .ok()
            }
            other => errors.push(field(&format!("/{other}"), "unknown query parameter")),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let proposals = state.ledger.proposals(&query).await?;
    let next_cursor = (proposals.len() == query.limit as usize)
        .then(|| proposals.last().map(|p| p.id))
        .flatten();
    let viewer = caller.viewer();
    Ok(Json(ProposalPage {
        proposals: proposals.iter().map(|p| p.seen_by(viewer)).collect(),
        next_cursor,
    }))
}

/// Take back this token's request for a pending proposal: the proposal ends `cancelled` when
/// no other requester still asks for it; otherwise only this token's request is withdrawn.
#[utoipa::path(
    post, path = "/v1/proposals/{id}/cancel", tag = "proposals",
    params(("id" = String, Path, description = "Proposal id")),
    responses((status = 200, body = ProposalView), (status = 401, body = Problem), (status = 404, description = "No such proposal of this token's", body = Problem), (status = 409, description = "No longer pending", body = Problem)),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<ProposalView>, Problem> {
    let id = parse_id(&raw)?;
    let by = Requester::Integration {
        name: caller.0.name.clone(),
        token_id: caller.0.id.clone(),
    };
    match decisions::cancel(&state, id, &by).await {
        Ok(proposal) => Ok(Json(proposal.seen_by(caller.viewer()))),
        Err(DecisionError::NotFound) => {
            Err(Problem::not_found(format!("no proposal has the id {id}")))
        }
        // Like GET, another token's proposal is not found: its existence is not disclosed.
        Err(DecisionError::Refused(Refusal::NotRequester)) => {
            Err(Problem::not_found(format!("no proposal has the id {id}")))
        }
        Err(DecisionError::Refused(refusal)) => {
            Err(Problem::conflict("not_pending", refusal.to_string()))
        }
        Err(DecisionError::Storage(error)) => Err(error.into()),
        // Cancelling asks nothing of 1Password.
        Err(error @ DecisionError::Unverified(_)) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "onepassword_unavailable",
            "1Password unavailable",
            error.to_string(),
        )),
    }
}
