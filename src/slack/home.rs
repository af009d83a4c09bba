//! The App Home tab, rendered from `app::home::Home` by one pure function: what its viewer can
//! decide now, with the card's facts and the same Approve and Deny buttons (the same handlers
//! answer them), then their recent requests and decisions. At most 100 blocks, as Slack allows.

use slack_morphism::prelude::*;

use super::card::{self, slack_time, tally, truncate, verb};
use super::mrkdwn::escape;
use crate::app::home::{Home, SHOWN};
use crate::domain::Proposal;

/// Slack's limit on the blocks of one view.
pub const MAX_BLOCKS: usize = 100;

pub fn render(home: &Home, channel: &str) -> Vec<SlackBlock> {
    let mut blocks: Vec<SlackBlock> = vec![SlackHeaderBlock::new(pt!("countersign")).into()];
    if !home.approver {
        blocks.push(section(
            "You are not among the approvers in countersign's policy, so nothing here waits for your decision. Approval cards are posted in the approvals channel; an operator adds approvers in the policy.".into(),
        ));
    } else if home.decidable.is_empty() {
        blocks.push(section(
            ":white_check_mark: Nothing waits for your decision.".into(),
        ));
    } else {
        blocks.push(section(format!(
            "*Waiting for your decision* ({})",
            home.decidable.len() + home.more
        )));
        for p in &home.decidable {
            blocks.push(section(facts(p)));
            blocks.extend(card::buttons(p, &format!("decision-{}", p.id)));
        }
        if home.more > 0 {
            blocks.push(context(format!(
                "{} more wait in <#{channel}>: this tab shows the newest {SHOWN}.",
                home.more
            )));
        }
    }
    if !home.recent.is_empty() {
        blocks.push(SlackDividerBlock::new().into());
        blocks.push(section("*Your recent requests and decisions*".into()));
        for p in &home.recent {
            blocks.push(context(format!(
                "{} {} · {} · {} · `{}`",
                verb(p.action),
                escape(&p.target.display_name),
                p.status,
                slack_time(p.created_at),
                p.id
            )));
        }
    }
    blocks.truncate(MAX_BLOCKS);
    blocks
}

/// A proposal's facts, as its card gives them.
fn facts(p: &Proposal) -> String {
    truncate(
        &format!(
            "*{} {}* ({})\n{}\n_Reason:_ {}\n_Source:_ {} · _Approvals:_ {} · proposed {} · `{}`",
            verb(p.action),
            escape(&p.target.display_name),
            escape(p.target.email.as_str()),
            p.target.state.as_str(),
            escape(p.reason.as_str()),
            card::source(p),
            tally(p),
            slack_time(p.created_at),
            p.id
        ),
        2900,
    )
}

fn section(text: String) -> SlackBlock {
    SlackSectionBlock::new().with_text(md!(text)).into()
}

fn context(text: String) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
        SlackBlockMarkDownText::new(text),
    )])
    .into()
}
