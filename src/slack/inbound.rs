//! What every request from Slack is checked for before it is read: over HTTP its signature,
//! and on every transport its workspace (`SLACK_TEAM_ID`).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::signature;
use crate::app::state::AppState;

/// The answer a request to one of Slack's HTTP routes gets instead of being read, if any: 404
/// while Socket Mode is on (nothing of Slack's is taken over HTTP then), 401 when its
/// signature does not verify (logged, never with the expected signature).
pub(super) fn refusal(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    if state.slack_settings.socket_mode() {
        return Some(super::socket::http_route_off());
    }
    let verified = signature::verify(&state.slack_settings.signing_secret, headers, body);
    let error = verified.err()?;
    tracing::warn!(%error, "refused a Slack request");
    Some((StatusCode::UNAUTHORIZED, "invalid Slack signature").into_response())
}

pub(super) fn wrong_team(state: &AppState, team: Option<&str>) -> bool {
    matches!((&state.slack_settings.team_id, team), (Some(expected), actual) if actual != Some(expected.as_str()))
}
