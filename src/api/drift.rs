//! `GET /v1/drift`: changes made in 1Password outside countersign, for auditors' tools.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};

use super::auth::Caller;
use super::problem::{FieldError, Problem};
use crate::app::state::AppState;
use crate::domain::attribution::Actor;
use crate::ledger::chain::StoredEvent;
use crate::ledger::Scope;

/// The most drift events one answer lists.
const LIMIT: i64 = 500;

/// Drift events, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DriftPage {
    drift: Vec<DriftEntry>,
}

/// A `drift.detected` event, and who made the change once 1Password's audit events named
/// them (`null` until then, or without `OP_EVENTS_TOKEN`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct DriftEntry {
    #[serde(flatten)]
    event: StoredEvent,
    attribution: Option<Actor>,
}

/// `drift.detected` events since a time (`audit:read`), newest first, at most 500.
#[utoipa::path(
    get, path = "/v1/drift", tag = "ledger",
    params(("since" = Option<String>, Query, description = "RFC 3339 time; only drift noticed at or after it")),
    responses((status = 200, body = DriftPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<DriftPage>, Problem> {
    caller.require(Scope::AuditRead)?;
    let mut since = None;
    let mut errors = vec![];
    for (key, value) in &params {
        match key.as_str() {
            "since" => match DateTime::parse_from_rfc3339(value) {
                Ok(at) => since = Some(at.with_timezone(&Utc)),
                Err(_) => errors.push(FieldError {
                    pointer: "/since".into(),
                    detail: "an RFC 3339 time, e.g. 2026-12-01T00:00:00Z".into(),
                }),
            },
            other => errors.push(FieldError {
                pointer: format!("/{other}"),
                detail: "unknown query parameter".into(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let events = state.ledger.drift_events(since, LIMIT).await?;
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let mut actors = state.ledger.drift_actors(&seqs).await?;
    let drift = events
        .into_iter()
        .map(|event| DriftEntry {
            attribution: actors.remove(&event.seq),
            event,
        })
        .collect();
    Ok(Json(DriftPage { drift }))
}
