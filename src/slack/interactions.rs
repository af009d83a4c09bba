//! `POST /slack/interactions`: button clicks and the deny dialog. The signature is checked
//! before anything is parsed; a decision is recorded before Slack gets its answer, and
//! refusals reach the clicker as an ephemeral message.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::card::{APPROVE, DENY, RETRY};
use super::clicker::resolve_decider;
use super::inbound::{refusal, wrong_team};
use super::incident_card::{row_choice, APPROVE_ALL, ROW};
use super::modal::{deny_modal, DENY_CALLBACK, REASON_BLOCK, REASON_INPUT};
pub use super::payload::Interaction;
use super::payload::{BlockActions, ViewSubmission};
use super::reply::tell;
use super::signature;
use crate::app::decisions::{self, DecisionError};
use crate::app::state::AppState;
use crate::app::step_up::{self, Offer};
use crate::domain::{Decider, ProposalId, Reason, Refusal, SlackUserId};

/// Slack's interactivity request URL: button clicks and the deny dialog, signed by Slack.
#[utoipa::path(
    post, path = "/slack/interactions", tag = "slack",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "payload=<interaction JSON>"),
    responses((status = 200, description = "Handled (refusals reach the clicker as ephemeral messages)"), (status = 401, description = "Bad, stale or missing Slack signature"))
)]
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refusal(&state, &headers, &body) {
        return refused;
    }
    let payload = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "payload"))
        .and_then(|(_, json)| serde_json::from_str::<Interaction>(&json).ok());
    let Some(interaction) = payload else {
        return (
            StatusCode::BAD_REQUEST,
            "expected a form field `payload` with an interaction",
        )
            .into_response();
    };
    // A "Propose suspension again" request is single use: delivered again, it does nothing.
    // (Approve, deny and retry are idempotent by themselves.)
    let proposes_again = matches!(&interaction, Interaction::BlockActions(event)
        if event.actions.first().is_some_and(|a| a.action_id == super::drift::PROPOSE_AGAIN));
    if proposes_again && !wrong_team(&state, interaction.team_id()) {
        let replayed = || StatusCode::OK.into_response();
        if let Some(answer) = signature::single_use(&state.ledger, &headers, replayed).await {
            return answer;
        }
    }
    answer(&state, interaction).await
}

/// An interaction from Slack, over HTTP or Socket Mode, once its transport vouched for it
/// (signature, or the app's own WebSocket) and saw it once: the answer Slack gets.
pub async fn answer(state: &AppState, interaction: Interaction) -> Response {
    if wrong_team(state, interaction.team_id()) {
        tracing::warn!(
            team = interaction.team_id(),
            "refused a Slack request from another workspace"
        );
        return (
            StatusCode::UNAUTHORIZED,
            "this app serves another Slack workspace",
        )
            .into_response();
    }
    match interaction {
        Interaction::BlockActions(actions) => block_actions(state, actions).await,
        Interaction::ViewSubmission(submission) => view_submission(state, submission).await,
        Interaction::Other => StatusCode::OK.into_response(),
    }
}

fn explain(error: &DecisionError) -> String {
    match error {
        DecisionError::Refused(refusal) => refusal.to_string(),
        DecisionError::NotFound => "countersign has no such proposal.".into(),
        DecisionError::Storage(_) => {
            "countersign could not record that; nothing was changed. Try again.".into()
        }
        DecisionError::Unverified(_) => error.to_string(),
    }
}

/// What the clicker hears when their vote needs a passkey: a one-time link, or how to get one.
async fn step_up_offer(state: &AppState, id: ProposalId, decider: &Decider) -> String {
    let offered = match state.ledger.proposal(id).await {
        Ok(Some(proposal)) => step_up::offer_vote(state, &proposal, decider).await,
        Ok(None) => return "countersign has no such proposal.".into(),
        Err(error) => Err(error.into()),
    };
    match offered {
        Ok(Offer::Link(url)) => format!(
            ":key: Your vote counts once you confirm it with your passkey: <{url}|confirm with your passkey> (this link is yours alone, for this proposal, for 5 minutes)."
        ),
        Ok(Offer::NoPasskey) => format!(
            ":key: This vote must be confirmed with a passkey, and you have none yet. Ask an operator to run `countersign passkey invite {}` and open the link it prints.",
            decider.slack_user_id
        ),
        Err(error) => error.to_string(),
    }
}

async fn block_actions(state: &AppState, event: BlockActions) -> Response {
    let Some(action) = event.actions.first() else {
        return StatusCode::OK.into_response();
    };
    // A click on the Home tab has no channel: its answers go to the approvals channel, where
    // the card is.
    let from_home = event.clicked_in_view();
    let channel = event
        .channel_id()
        .or(from_home.then_some(state.slack_settings.channel.as_str()));
    let Ok(user) = SlackUserId::parse(&event.user.id) else {
        return (StatusCode::BAD_REQUEST, "unknown Slack user id").into_response();
    };
    if action.action_id == super::drift::PROPOSE_AGAIN {
        return super::propose_again::click(state, channel, &user, action.value.as_deref()).await;
    }
    if action.action_id == APPROVE_ALL {
        let card = event.card();
        super::approve_all::click(state, channel, card, user, action.value.as_deref());
        return StatusCode::OK.into_response();
    }
    // A row of an incident card offers its decisions in a menu: the choice names the button
    // it stands for and the proposal.
    let (action_id, value) = match &action.selected_option {
        Some(option) if action.action_id == ROW => match row_choice(&option.value) {
            Some((action_id, id)) => (action_id, Some(id)),
            None => ("", None),
        },
        _ => (action.action_id.as_str(), action.value.as_deref()),
    };
    let Some(id) = value.and_then(|v| ProposalId::parse(v).ok()) else {
        tell(
            state,
            channel,
            &user,
            "That button carries no proposal id countersign knows.".into(),
        );
        return StatusCode::OK.into_response();
    };
    let decider = match resolve_decider(state, &user).await {
        Ok(decider) => decider,
        Err(message) => {
            tell(state, channel, &user, message);
            return StatusCode::OK.into_response();
        }
    };
    let outcome = match action_id {
        APPROVE => match decisions::approve(state, id, &decider).await {
            // The vote must be confirmed with the approver's passkey: offer the link.
            Err(DecisionError::Refused(Refusal::PasskeyNeeded(_))) => {
                tell(
                    state,
                    channel,
                    &user,
                    step_up_offer(state, id, &decider).await,
                );
                Ok(())
            }
            other => other.map(|_| ()),
        },
        RETRY => decisions::retry(state, id, &decider).await.map(|_| ()),
        DENY => match decisions::may_decide(state, id, &decider).await {
            Ok(proposal) => {
                // Opened after Slack has its answer (the trigger lives 3 s): the click's
                // acknowledgement never waits on a Slack call.
                let trigger = event.trigger_id.clone().unwrap_or_default();
                let (state, channel, user) =
                    (state.clone(), channel.map(str::to_owned), user.clone());
                tokio::spawn(async move {
                    let opened = state.slack.open_view(&trigger, deny_modal(&proposal)).await;
                    if let Err(error) = opened {
                        tracing::warn!(proposal_id = %id, %error, "could not open the deny dialog");
                        let retry = "Slack did not open the deny dialog; click Deny again.";
                        tell(&state, channel.as_deref(), &user, retry.into());
                    }
                });
                Ok(())
            }
            Err(error) => Err(error),
        },
        other => {
            tracing::debug!(action_id = other, "ignored an unknown action");
            Ok(())
        }
    };
    if let Err(error) = outcome {
        tracing::info!(proposal_id = %id, user = %user, %error, "click refused");
        tell(state, channel, &user, explain(&error));
    }
    if from_home {
        // The Home shows what the clicker can still decide: no longer this one, once counted.
        let state = state.clone();
        tokio::spawn(async move { super::home_tab::publish(&state, &user, None).await });
    }
    StatusCode::OK.into_response()
}

/// Answers a dialog submission with an error shown under the reason field.
fn field_error(message: String) -> Response {
    Json(json!({"response_action": "errors", "errors": {REASON_BLOCK: message}})).into_response()
}

async fn view_submission(state: &AppState, submission: ViewSubmission) -> Response {
    if submission.view.callback_id.as_deref() != Some(DENY_CALLBACK) {
        return StatusCode::OK.into_response();
    }
    let Some(id) = submission
        .view
        .private_metadata
        .as_deref()
        .and_then(|m| ProposalId::parse(m).ok())
    else {
        return field_error("This dialog lost its proposal; close it and click Deny again.".into());
    };
    let reason = match Reason::parse(
        submission
            .view
            .input(REASON_BLOCK, REASON_INPUT)
            .unwrap_or_default(),
    ) {
        Ok(reason) => reason,
        Err(message) => return field_error(format!("A denial needs a reason: {message}.")),
    };
    let Ok(user) = SlackUserId::parse(&submission.user.id) else {
        return field_error("Slack sent an unknown user.".into());
    };
    let decider = match resolve_decider(state, &user).await {
        Ok(decider) => decider,
        Err(message) => return field_error(message),
    };
    match decisions::deny(state, id, &decider, reason).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => field_error(explain(&error)),
    }
}
