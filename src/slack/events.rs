//! The Events API: `POST /slack/events` (signed, with Slack's `url_verification`) and the
//! `events_api` envelopes of Socket Mode, answered by one function. countersign subscribes to
//! `app_home_opened` alone, and publishes the opener's Home.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::home_tab;
use super::inbound::{refusal, wrong_team};
use crate::app::state::AppState;
use crate::domain::SlackUserId;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Request {
    UrlVerification {
        challenge: String,
    },
    EventCallback {
        #[serde(default)]
        team_id: Option<String>,
        event: Event,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    AppHomeOpened {
        user: String,
        #[serde(default)]
        tab: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// Slack's Events API request URL, signed by Slack.
#[utoipa::path(
    post, path = "/slack/events", tag = "slack",
    request_body(content = String, content_type = "application/json", description = "An Events API callback, or Slack's url_verification"),
    responses((status = 200, description = "Handled (url_verification is answered with its challenge)"), (status = 401, description = "Bad, stale or missing Slack signature"))
)]
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refusal(&state, &headers, &body) {
        return refused;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(callback) => answer(&state, callback).await,
        Err(_) => (StatusCode::BAD_REQUEST, "expected an Events API callback").into_response(),
    }
}

/// An Events API callback, over HTTP or from a Socket Mode envelope: the answer Slack gets
/// (at once; the Home is published after).
pub async fn answer(state: &AppState, callback: Value) -> Response {
    let Ok(callback) = serde_json::from_value::<Request>(callback) else {
        return StatusCode::OK.into_response();
    };
    match callback {
        Request::UrlVerification { challenge } => {
            Json(json!({ "challenge": challenge })).into_response()
        }
        Request::EventCallback { team_id, .. } if wrong_team(state, team_id.as_deref()) => {
            tracing::warn!(
                team = team_id.as_deref(),
                "refused an event from another workspace"
            );
            (
                StatusCode::UNAUTHORIZED,
                "this app serves another Slack workspace",
            )
                .into_response()
        }
        Request::EventCallback {
            event: Event::AppHomeOpened { user, tab },
            ..
        } if tab.as_deref().unwrap_or("home") == "home" => {
            if let Ok(user) = SlackUserId::parse(&user) {
                let state = state.clone();
                tokio::spawn(async move {
                    // Kept current for a day after (`worker::homes`), on every replica.
                    if let Err(error) = state.ledger.home_opened(user.as_str(), Utc::now()).await {
                        tracing::warn!(%error, "could not record a Home opening");
                    }
                    home_tab::publish(&state, &user, None).await;
                });
            }
            StatusCode::OK.into_response()
        }
        Request::EventCallback { .. } | Request::Other => StatusCode::OK.into_response(),
    }
}
