//! The words of an escalation: a post in an escalation channel (mentioning its user groups),
//! or a direct message, with the card's facts and a link to the card.

use super::card::{slack_time, source, tally, verb};
use super::commands::message_link;
use super::mrkdwn::escape;
use crate::domain::{Proposal, SlackRef};

pub fn render(p: &Proposal, mention: &[String], card: &SlackRef) -> String {
    let mentions: Vec<String> = mention.iter().map(|g| format!("<!subteam^{g}>")).collect();
    let mut text = format!(
        ":rotating_light: *Needs a decision:* {} *{}* ({}) — pending since {}, {} · expires {}\n_Reason:_ {}\n_Source:_ {} · <{}|Open the card to decide> · proposal `{}`",
        verb(p.action),
        escape(&p.target.display_name),
        escape(p.target.email.as_str()),
        slack_time(p.created_at),
        tally(p),
        slack_time(p.expires_at),
        escape(p.reason.as_str()),
        source(p),
        message_link(&card.channel, &card.ts),
        p.id
    );
    if p.incident.is_some() {
        text.push_str("\nThis is the first pending row of an incident card: more suspensions wait there, and *Approve all* decides them.");
    }
    if !mentions.is_empty() {
        text.push('\n');
        text.push_str(&mentions.join(" "));
    }
    text
}
