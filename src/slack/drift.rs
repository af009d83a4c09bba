//! Words and buttons for drift: an urgent message when a user countersign suspended is active
//! again outside it, and a line for the audit channel for any other change.

use slack_morphism::prelude::*;

use super::card::Card;
use super::mrkdwn::escape;
use crate::ledger::chain::StoredEvent;
use crate::ledger::UnannouncedDrift;

/// The button that proposes the suspension again; its value is the drift's seq.
pub const PROPOSE_AGAIN: &str = "propose_suspension_again";

fn who(drift: &UnannouncedDrift) -> String {
    escape(drift.email.as_deref().unwrap_or(&drift.user_id))
}

/// The urgent message: who, when it was noticed, the suspension it undid, and the button.
pub fn urgent(drift: &UnannouncedDrift, event: Option<&StoredEvent>) -> Card {
    let undid = event
        .and_then(|e| e.payload["last_proposal"]["id"].as_str().map(str::to_owned))
        .map(|id| format!(" It undid countersign's suspension (proposal `{id}`)."))
        .unwrap_or_default();
    let text = format!(
        ":rotating_light: {} was reactivated in 1Password outside countersign (noticed {}).{undid}",
        who(drift),
        drift.noticed_at
    );
    let button = SlackBlockButtonElement::new(pt!("Propose suspension again"))
        .with_action_id(SlackActionId(PROPOSE_AGAIN.to_owned()))
        .with_value(drift.seq.to_string())
        .with_style(SlackBlockButtonStyle::Danger);
    let blocks = vec![
        SlackSectionBlock::new().with_text(md!(text.clone())).into(),
        SlackActionsBlock::new(vec![button.into()])
            .with_block_id(SlackBlockId("drift".into()))
            .into(),
    ];
    Card { text, blocks }
}

/// A line for the audit channel.
pub fn audit(drift: &UnannouncedDrift) -> String {
    format!(
        ":mag: Drift: {} went from {:?} to {:?} in 1Password outside countersign (noticed {}).",
        who(drift),
        drift.from,
        drift.to,
        drift.noticed_at
    )
}
