//! What every request from Slack is checked for before it is read: over HTTP its signature,
//! and on every transport its workspace (`SLACK_TEAM_ID`).

use axum::http::HeaderMap;

use super::signature;
use crate::app::state::AppState;

/// Verifies a Slack request's signature; a failure is logged (never with the expected
/// signature) and answered 401 by the caller.
pub(super) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), signature::SignatureError> {
    signature::verify(&state.slack_settings.signing_secret, headers, body)
        .inspect_err(|error| tracing::warn!(%error, "refused a Slack request"))
}

pub(super) fn wrong_team(state: &AppState, team: Option<&str>) -> bool {
    matches!((&state.slack_settings.team_id, team), (Some(expected), actual) if actual != Some(expected.as_str()))
}
