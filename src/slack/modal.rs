//! The dialog Deny opens: it asks why, and carries the proposal id in `private_metadata`.

use slack_morphism::prelude::*;

use super::mrkdwn::escape;
use crate::domain::{Proposal, Reason};

pub const DENY_CALLBACK: &str = "deny_reason";
pub const REASON_BLOCK: &str = "reason";
pub const REASON_INPUT: &str = "reason";

pub fn deny_modal(p: &Proposal) -> SlackView {
    let input = SlackBlockPlainTextInputElement::new()
        .with_action_id(SlackActionId(REASON_INPUT.into()))
        .with_multiline(true)
        .with_min_length(Reason::MIN as u64)
        .with_max_length(Reason::MAX as u64);
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(md!(format!(
                "Deny the {} of *{}* ({})? A denial ends the proposal.",
                p.action.as_str(),
                escape(&p.target.display_name),
                escape(p.target.email.as_str())
            )))
            .into(),
        SlackInputBlock::new(pt!("Why?"), SlackInputBlockElement::PlainTextInput(input))
            .with_block_id(SlackBlockId(REASON_BLOCK.into()))
            .into(),
    ];
    SlackView::Modal(
        SlackModalView::new(pt!("Deny proposal"), blocks)
            .with_submit(pt!("Deny"))
            .with_close(pt!("Cancel"))
            .with_callback_id(SlackCallbackId(DENY_CALLBACK.into()))
            .with_private_metadata(p.id.to_string()),
    )
}
