//! "Approve all" on an incident card: answered at once (Slack waits three seconds), then each
//! pending row shown is approved as if clicked alone, and the clicker hears what was approved
//! and, row by row, what was not and why.

use super::card::truncate;
use super::incident_card::approve_all_value;
use super::mrkdwn::escape;
use super::reply::tell;
use crate::app::decisions::DecisionError;
use crate::app::incidents::{self, RowOutcome};
use crate::app::state::AppState;
use crate::domain::{Refusal, SlackRef, SlackUserId};

/// How many refused rows the answer names one by one.
const LISTED: usize = 20;

fn why(error: &DecisionError) -> String {
    match error {
        DecisionError::Refused(Refusal::PasskeyNeeded(_)) => {
            "its vote needs your passkey: choose Approve on its row".to_owned()
        }
        DecisionError::Refused(refusal) => refusal.to_string(),
        DecisionError::NotFound => "countersign has no such proposal".to_owned(),
        DecisionError::Storage(_) => "countersign could not record it; try again".to_owned(),
        DecisionError::Unverified(_) => error.to_string(),
    }
}

fn summary(outcomes: &[RowOutcome]) -> String {
    let approved = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let refused: Vec<&RowOutcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if outcomes.is_empty() {
        return "Nothing was pending on this incident's cards up to this one; nothing was changed."
            .to_owned();
    }
    let mut text = format!(
        ":white_check_mark: You approved {approved} of the {} pending suspensions shown.",
        outcomes.len()
    );
    if !refused.is_empty() {
        text.push_str(&format!("\nNot approved ({}):", refused.len()));
        for outcome in refused.iter().take(LISTED) {
            let Err(error) = &outcome.result else {
                continue;
            };
            text.push_str(&format!(
                "\n• *{}* — {}",
                escape(outcome.proposal.target.email.as_str()),
                escape(&truncate(&why(error), 200))
            ));
        }
        if refused.len() > LISTED {
            text.push_str(&format!("\n… and {} more.", refused.len() - LISTED));
        }
    }
    text
}

/// Handles the click: `value` is the button's, `card` the clicked message.
pub(super) fn click(
    state: &AppState,
    channel: Option<&str>,
    card: Option<SlackRef>,
    user: SlackUserId,
    value: Option<&str>,
) {
    let Some((incident, upto)) = value.and_then(approve_all_value) else {
        tell(
            state,
            channel,
            &user,
            "That button names no incident countersign knows.".into(),
        );
        return;
    };
    let (state, channel) = (state.clone(), channel.map(str::to_owned));
    tokio::spawn(async move {
        let decider = match super::clicker::resolve_decider(&state, &user).await {
            Ok(decider) => decider,
            Err(message) => return tell(&state, channel.as_deref(), &user, message),
        };
        let answer = match incidents::approve_all(&state, incident, upto, card.as_ref(), &decider)
            .await
        {
            Ok(outcomes) => {
                tracing::info!(%incident, approver = %user, rows = outcomes.len(), "approve all");
                summary(&outcomes)
            }
            Err(error) => {
                tracing::error!(%incident, %error, "approve all could not read the incident");
                "countersign could not read this incident; nothing was changed. Try again.".into()
            }
        };
        tell(&state, channel.as_deref(), &user, answer);
    });
}
