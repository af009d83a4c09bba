//! Operating endpoints, without a token: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::domain::{Action, Status};
use crate::metrics::Gauge;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database takes a write (it is open and migrated) and every outbox lane is
/// running; the body also reports the last Slack and 1Password call results, so an operator
/// sees a failing dependency at once.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "The database is not writable, or an outbox lane is not running")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = state.ledger.ping().await;
    let stopped = state.lanes.stopped();
    let ready = database.is_ok() && stopped.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": match &database {
            Ok(()) => "writable".to_owned(),
            Err(error) => format!("not writable: {error}"),
        },
        "lanes_stopped": stopped,
        "job_panics": state.lanes.panics(),
        "slack": state.metrics.last_call("slack"),
        "onepassword": state.metrics.last_call("onepassword"),
    });
    (status, Json(body)).into_response()
}

/// Prometheus metrics (text format); labels carry action and status, never a user.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (counts, depth) = match (
        state.ledger.proposal_counts().await,
        state.ledger.outbox_depth().await,
    ) {
        (Ok(counts), Ok(depth)) => (counts, depth),
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "could not read metrics from the ledger");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    // Every action and status appears, at zero when there are none, so rates can be taken.
    let mut proposals = vec![];
    for action in [Action::Suspend, Action::Restore] {
        for status in Status::ALL {
            let n = counts
                .iter()
                .find(|(a, s, _)| a == action.as_str() && s == status.as_str())
                .map_or(0, |(_, _, n)| *n);
            proposals.push((
                vec![("action", action.as_str()), ("status", status.as_str())],
                n as f64,
            ));
        }
    }
    let lanes = ["onepassword", "slack", "callback"];
    let outbox = lanes
        .iter()
        .map(|lane| {
            let n = depth.iter().find(|(l, _)| l == lane).map_or(0, |(_, n)| *n);
            (vec![("lane", *lane)], n as f64)
        })
        .collect();
    let text = state.metrics.render(&[
        Gauge {
            name: "countersign_proposals",
            help: "Proposals by action and status.",
            samples: proposals,
        },
        Gauge {
            name: "countersign_outbox_depth",
            help: "Outbox jobs not yet done, by lane.",
            samples: outbox,
        },
    ]);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
