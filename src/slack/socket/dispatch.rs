//! An envelope answered through the same handlers as Slack's HTTP routes: an interaction by
//! `interactions::answer`, a slash command by `commands::answer` (its JSON rebuilt as the form
//! Slack would have posted). What the HTTP route would have answered in its body is what the
//! acknowledgement carries.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::envelope::{Envelope, Kind};
use crate::app::state::AppState;
use crate::slack::interactions::Interaction;
use crate::slack::{commands, events, interactions};

/// The most of a handler's answer an acknowledgement carries.
const ANSWER_LIMIT: usize = 64 * 1024;

/// How long an envelope id is remembered: far longer than Slack retries one.
const REMEMBER: chrono::Duration = chrono::Duration::minutes(30);

/// Why an envelope is not acknowledged: Slack delivers it again (to any connection).
#[derive(Debug, thiserror::Error)]
#[error("the ledger could not record the envelope: {0}")]
pub struct Unrecorded(#[from] sqlx::Error);

/// Handles `envelope` and returns the answer its acknowledgement carries, if any.
pub async fn answer(
    state: &AppState,
    kind: Kind,
    envelope: Envelope,
) -> Result<Option<Value>, Unrecorded> {
    let response = match kind {
        Kind::Interactive => interactive(state, &envelope).await?,
        Kind::SlashCommands => slash_command(state, &envelope).await?,
        Kind::EventsApi => events::answer(state, envelope.payload.clone()).await,
    };
    Ok(ack_payload(response, envelope.accepts_response_payload).await)
}

async fn interactive(state: &AppState, envelope: &Envelope) -> Result<Response, Unrecorded> {
    let Ok(interaction) = serde_json::from_value::<Interaction>(envelope.payload.clone()) else {
        tracing::warn!(envelope_id = %envelope.envelope_id, "an interactive envelope countersign cannot read");
        return Ok(StatusCode::OK.into_response());
    };
    // "Propose suspension again" is single use over HTTP by its signature; here by its
    // envelope. (Approve, deny and retry are idempotent by themselves.)
    let proposes_again = matches!(&interaction, Interaction::BlockActions(event)
        if event.actions.first().is_some_and(|a| a.action_id == crate::slack::drift::PROPOSE_AGAIN));
    if proposes_again && !first_delivery(state, &envelope.envelope_id).await? {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(interactions::answer(state, interaction).await)
}

async fn slash_command(state: &AppState, envelope: &Envelope) -> Result<Response, Unrecorded> {
    // A command delivered again is answered once: the first delivery recorded its envelope.
    if !first_delivery(state, &envelope.envelope_id).await? {
        return Ok(StatusCode::OK.into_response());
    }
    let fields: Vec<(String, String)> = envelope
        .payload
        .as_object()
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let form = serde_urlencoded::to_string(fields).unwrap_or_default();
    Ok(commands::answer(state, form.as_bytes()).await)
}

/// Records the envelope id in the ledger every replica shares; `false` when it was there.
async fn first_delivery(state: &AppState, envelope_id: &str) -> Result<bool, sqlx::Error> {
    let key = hex::encode(Sha256::digest(format!("socket-envelope:{envelope_id}")));
    let now = Utc::now();
    let first = state
        .ledger
        .first_delivery(&key, now, now, now - REMEMBER)
        .await?;
    if !first {
        tracing::info!(%envelope_id, "ignored an envelope Slack delivered again");
    }
    Ok(first)
}

/// The JSON body a handler answered, when the acknowledgement may carry it.
async fn ack_payload(response: Response, accepts: bool) -> Option<Value> {
    if !accepts || !response.status().is_success() {
        return None;
    }
    let body = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
        .await
        .ok()?;
    serde_json::from_slice(&body).ok()
}
