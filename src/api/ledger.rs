//! `GET /v1/ledger`: the event log for auditors' tools, paged by seq.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;

use super::auth::Caller;
use super::problem::{FieldError, Problem};
use crate::app::state::AppState;
use crate::ledger::chain::StoredEvent;
use crate::ledger::{EventQuery, Scope};

const MAX_LIMIT: i64 = 1000;

/// One page of ledger events, oldest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<StoredEvent>,
    /// Pass as `after_seq` for the next page.
    next_after_seq: i64,
}

/// The ledger's events after a seq (`audit:read`).
#[utoipa::path(
    get, path = "/v1/ledger", tag = "ledger",
    params(
        ("after_seq" = Option<i64>, Query, description = "Events after this seq (default 0)"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, body = EventPage), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>, Problem> {
    caller.require(Scope::AuditRead)?;
    let mut query = EventQuery {
        limit: 100,
        ..EventQuery::default()
    };
    let mut errors = vec![];
    for (key, value) in &params {
        let number = value.parse::<i64>();
        match (key.as_str(), number) {
            ("after_seq", Ok(n)) if n >= 0 => query.after_seq = n,
            ("limit", Ok(n)) if (1..=MAX_LIMIT).contains(&n) => query.limit = n,
            ("after_seq", _) => errors.push(FieldError {
                pointer: "/after_seq".into(),
                detail: "a whole number, 0 or more".into(),
            }),
            ("limit", _) => errors.push(FieldError {
                pointer: "/limit".into(),
                detail: format!("a whole number from 1 to {MAX_LIMIT}"),
            }),
            (other, _) => errors.push(FieldError {
                pointer: format!("/{other}"),
                detail: "unknown query parameter".into(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    let events = state.ledger.events_where(&query).await?;
    let next_after_seq = events.last().map(|e| e.seq).unwrap_or(query.after_seq);
    Ok(Json(EventPage {
        events,
        next_after_seq,
    }))
}
