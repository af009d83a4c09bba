//! Words and buttons for drift: an urgent message when a user countersign suspended is active
//! again outside it, and a line for the audit channel for any other change.

use slack_morphism::prelude::*;

use super::card::{slack_time, Card};
use super::mrkdwn::escape;
use crate::ledger::chain::StoredEvent;
use crate::ledger::UnannouncedDrift;

/// The button that proposes the suspension again; its value is the drift's seq.
pub const PROPOSE_AGAIN: &str = "propose_suspension_again";

fn who(drift: &UnannouncedDrift) -> String {
    escape(drift.email.as_deref().unwrap_or(&drift.user_id))
}

/// "in the 1Password console by Dana <dana@…> from 203.0.113.4 (Toronto, Ontario, CA) at
/// 14:02", once an audit event named who; else "outside countersign".
fn by_whom(drift: &UnannouncedDrift) -> String {
    let Some(actor) = &drift.actor else {
        return "outside countersign".to_owned();
    };
    let mut text = format!("in the 1Password console by {}", escape(&actor.who()));
    if let Some(ip) = &actor.ip {
        text.push_str(&format!(" from {}", escape(ip)));
    }
    if let Some(location) = &actor.location {
        text.push_str(&format!(" ({})", escape(location)));
    }
    text.push_str(&format!(" at {}", slack_time(actor.at)));
    text
}

/// The urgent message: who, when it was noticed, the suspension it undid, and the button.
pub fn urgent(drift: &UnannouncedDrift, event: Option<&StoredEvent>) -> Card {
    let undid = event
        .and_then(|e| e.payload["last_proposal"]["id"].as_str().map(str::to_owned))
        .map(|id| format!(" It undid countersign's suspension (proposal `{id}`)."))
        .unwrap_or_default();
    let text = format!(
        ":rotating_light: {} was reactivated {} (noticed {}).{undid}",
        who(drift),
        by_whom(drift),
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
pub fn audit(drift: &UnannouncedDrift) -> Card {
    let text = format!(
        ":mag: Drift: {} went from {:?} to {:?} {} (noticed {}).",
        who(drift),
        drift.from,
        drift.to,
        by_whom(drift),
        drift.noticed_at
    );
    Card {
        text,
        blocks: vec![],
    }
}
