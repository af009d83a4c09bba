//! Operating endpoints, without a token: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::state::AppState;
use crate::domain::drift::direction;
use crate::domain::{Action, Status, UserState};
use crate::metrics::Gauge;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database takes a write (it is open and migrated) and every outbox lane is
/// running; `degraded` (still 200) while approval cards are overdue. The body also reports the
/// last Slack and 1Password call results, so an operator sees a failing dependency at once.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, description = "The database is not writable, an outbox lane is not running, or Slack refused Socket Mode")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = state.ledger.writable().await;
    let stopped = state.lanes.stopped();
    let overdue = cards_overdue(&state).await;
    // Slack refused Socket Mode outright: no click or command can reach countersign.
    let socket_problem = state.socket.problem();
    let ready = database.is_ok() && stopped.is_empty() && socket_problem.is_none();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        // Cards overdue (Slack down or slow) leave the service up but responders blind.
        "status": match (ready, overdue) {
            (false, _) => "unavailable",
            (true, 0) => "ready",
            (true, _) => "degraded",
        },
        "cards_overdue": overdue,
        "database": match &database {
            Ok(()) => "writable".to_owned(),
            Err(error) => format!("not writable: {error}"),
        },
        "lanes_stopped": stopped,
        "job_panics": state.lanes.panics(),
        "slack": state.metrics.last_call("slack"),
        "onepassword": state.metrics.last_call("onepassword"),
        "slack_socket": state.slack_settings.socket_mode().then(|| json!({
            "connections_open": state.socket.open_connections(),
            "connections_wanted": state.slack_settings.socket_connections,
            "problem": socket_problem,
        })),
    });
    (status, Json(body)).into_response()
}

/// Drifts recorded, by direction; every direction appears, at zero when there is none.
async fn drift_samples(state: &AppState) -> Vec<(Vec<(&'static str, &'static str)>, f64)> {
    let counts = state.ledger.drift_counts().await.unwrap_or_default();
    [UserState::Active, UserState::Suspended]
        .into_iter()
        .map(|to| {
            let n = counts
                .iter()
                .find(|(name, _)| name == to.as_str())
                .map_or(0, |(_, n)| *n);
            (vec![("direction", direction(to))], n as f64)
        })
        .collect()
}

/// Pending proposals still without a card after `card_overdue_after`.
async fn cards_overdue(state: &AppState) -> i64 {
    let after = chrono::Duration::from_std(state.timing.card_overdue_after)
        .unwrap_or(chrono::Duration::seconds(30));
    match state.ledger.overdue_cards(chrono::Utc::now() - after).await {
        Ok(n) => n,
        Err(error) => {
            tracing::error!(%error, "could not count overdue cards");
            0
        }
    }
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
        Gauge {
            name: "countersign_cards_overdue",
            help: "Pending proposals whose approval card is not yet posted after the grace period.",
            samples: vec![(vec![], cards_overdue(&state).await as f64)],
        },
        Gauge {
            name: "countersign_drift_detected",
            help: "Changes made in 1Password outside countersign, by direction.",
            samples: drift_samples(&state).await,
        },
        Gauge {
            name: "countersign_onepassword_concurrency",
            help: "How many 1Password actions may run at once now (halved on 429).",
            samples: vec![(vec![], state.op_concurrency.limit() as f64)],
        },
        Gauge {
            name: "countersign_job_panics",
            help: "Outbox jobs that panicked (each was rescheduled) since start.",
            samples: vec![(vec![], state.lanes.panics() as f64)],
        },
        Gauge {
            name: "countersign_slack_socket_connections",
            help: "Socket Mode connections open now (0 when Socket Mode is off).",
            samples: vec![(vec![], state.socket.open_connections() as f64)],
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
