//! The approval card, rendered from a proposal by one pure function: every change to a
//! proposal re-renders the whole card, so what Slack shows can never drift from the ledger.

use slack_morphism::prelude::*;

use super::mrkdwn::escape;
use crate::domain::authority::Proof;
use crate::domain::{Action, Outcome, Proposal, Requester, Status};

/// The `action_id`s of the card's buttons; each button's `value` is the proposal id.
pub const APPROVE: &str = "approve";
pub const DENY: &str = "deny";
pub const RETRY: &str = "retry";

/// A rendered card: the notification text and the blocks.
#[derive(Debug, Clone)]
pub struct Card {
    pub text: String,
    pub blocks: Vec<SlackBlock>,
}

/// Escapes caller-supplied text for mrkdwn, so it cannot mention `@channel` or hide a link.
pub(super) fn verb(action: Action) -> &'static str {
    match action {
        Action::Suspend => "Suspend",
        Action::Restore => "Restore",
    }
}

/// Slack renders this in the reader's time zone; the fallback is UTC.
pub(super) fn slack_time(at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

fn requester(proposal: &Proposal) -> String {
    who(&proposal.requester)
}

fn who(requester: &Requester) -> String {
    match requester {
        Requester::Integration { name, .. } => format!("automation `{}`", escape(name)),
        Requester::SlackUser { slack_user_id, .. } => format!("<@{slack_user_id}>"),
    }
}

/// Everyone who asked, first asker first: each is a requester the policy's rules apply to.
fn requesters(proposal: &Proposal) -> String {
    proposal
        .requesters()
        .map(who)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn source(proposal: &Proposal) -> String {
    let s = &proposal.source;
    let mut parts = vec![escape(&s.platform)];
    if let Some(rule) = &s.rule {
        parts.push(format!("rule `{}`", escape(rule)));
    }
    if let Some(confidence) = s.confidence {
        parts.push(format!("{confidence:?} confidence").to_lowercase());
    }
    if let Some(severity) = &s.severity {
        parts.push(format!("severity {}", escape(severity)));
    }
    match (&s.alert_url, &s.alert_id) {
        (Some(url), id) => parts.push(super::alert_link::render(url, id.as_deref())),
        (None, Some(id)) => parts.push(format!("alert {}", escape(id))),
        (None, None) => {}
    }
    parts.join(" · ")
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "1 of 2 approvals — needs a second approver".
pub fn tally(proposal: &Proposal) -> String {
    tally_of(proposal.approvals_count(), proposal.approvals_required)
}

/// The tally for `count` approvals of `required`.
pub(super) fn tally_of(count: u32, required: u32) -> String {
    let need = required.saturating_sub(count);
    let needs = match (count, need) {
        (_, 0) => "complete".to_owned(),
        (0, n) => format!("needs {}", plural(n, "approver")),
        (1, 1) => "needs a second approver".to_owned(),
        (_, n) => format!("needs {} more", plural(n, "approver")),
    };
    format!("{count} of {} — {needs}", plural(required, "approval"))
}

/// Who approved: the people, or the operator's policy rule when no human did.
pub(super) fn approvers(proposal: &Proposal) -> String {
    if let Some(rule) = &proposal.auto_approved_by {
        return format!("policy rule `{}`", escape(rule));
    }
    proposal
        .approvals
        .iter()
        .map(|a| match a.proof {
            Proof::Passkey => format!("<@{}> (passkey-verified)", a.slack_user_id),
            Proof::Click => format!("<@{}>", a.slack_user_id),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn outcome_text(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Suspended => "suspended in 1Password",
        Outcome::Reactivated => "reactivated in 1Password",
        Outcome::AlreadySuspended => "was already suspended; no change made",
        Outcome::AlreadyActive => "was already active; no change made",
    }
}

/// One line saying where the proposal stands.
fn status_line(p: &Proposal) -> String {
    let by = approvers(p);
    match p.status {
        Status::Pending => {
            let mut line = format!(":hourglass_flowing_sand: *{}*", tally(p));
            if !by.is_empty() {
                line.push_str(&format!(" · approved by {by}"));
            }
            line.push_str(&format!(" · expires {}", slack_time(p.expires_at)));
            line
        }
        Status::Approved => format!(":white_check_mark: *Approved* by {by}; executing shortly"),
        Status::Executing => format!(":gear: *Executing* in 1Password (approved by {by})"),
        Status::Executed => {
            let outcome = p.execution.outcome.map(outcome_text).unwrap_or("done");
            let at = p.execution.at.map(slack_time).unwrap_or_default();
            format!(
                ":white_check_mark: *Executed*: {} {outcome} · 1Password shows {} · {at} · approved by {by}",
                escape(&p.target.display_name),
                p.target.state.as_str()
            )
        }
        Status::Failed => format!(
            ":warning: *Failed*: {} (attempt {}) · an approver may retry",
            escape(p.execution.last_error.as_deref().unwrap_or("unknown error")),
            p.execution.attempts
        ),
        Status::Denied => match &p.denial {
            Some(d) => format!(
                ":no_entry: *Denied* by {} {}: {}",
                denier(d),
                slack_time(d.at),
                escape(d.reason.as_str())
            ),
            None => ":no_entry: *Denied*".to_owned(),
        },
        Status::Superseded => format!(
            ":fast_forward: *Superseded*: {} · this proposal made no change",
            superseded_by(p)
        ),
        Status::Expired => format!(
            ":alarm_clock: *Expired* {} with {}",
            slack_time(p.expires_at),
            tally(p)
        ),
        Status::Cancelled => format!(
            ":heavy_minus_sign: *Cancelled* by its requester, {}",
            requester(p)
        ),
    }
}

/// Who denied: the approver, or countersign itself when a new alert ended a pending restore.
fn denier(denial: &crate::domain::Denial) -> String {
    match &denial.slack_user_id {
        Some(user) => format!("<@{user}>"),
        None => "countersign".to_owned(),
    }
}

pub(super) fn superseded_by(p: &Proposal) -> String {
    match p.superseded_by {
        Some(newer) => format!(
            "a newer decision about this user (proposal `{newer}`) was approved after this one"
        ),
        None => "a newer decision about this user was approved after this one".to_owned(),
    }
}

fn button(action_id: &str, label: &str, proposal: &Proposal) -> SlackBlockButtonElement {
    SlackBlockButtonElement::new(pt!(label))
        .with_action_id(SlackActionId(action_id.to_owned()))
        .with_value(proposal.id.to_string())
}

/// The decision buttons a proposal offers now, in a block named `block_id` (unique within a
/// view: the Home tab lists many).
pub(super) fn buttons(p: &Proposal, block_id: &str) -> Option<SlackBlock> {
    let elements: Vec<SlackActionBlockElement> = match p.status {
        Status::Pending => {
            let mut approve =
                button(APPROVE, "Approve", p).with_style(SlackBlockButtonStyle::Primary);
            if p.action == Action::Restore {
                // Re-granting access deserves a second look before the click counts.
                approve = approve.with_confirm(SlackBlockConfirmItem::new(
                    pt!("Approve this restore?"),
                    md!(format!(
                        "This gives *{}* ({}) their 1Password access back once a second approver agrees.",
                        escape(&p.target.display_name),
                        escape(p.target.email.as_str())
                    )),
                    pt!("Approve restore"),
                    pt!("Cancel"),
                ));
            }
            vec![
                approve.into(),
                button(DENY, "Deny", p)
                    .with_style(SlackBlockButtonStyle::Danger)
                    .into(),
            ]
        }
        Status::Failed => vec![button(RETRY, "Retry", p)
            .with_style(SlackBlockButtonStyle::Primary)
            .into()],
        _ => return None,
    };
    Some(
        SlackActionsBlock::new(elements)
            .with_block_id(SlackBlockId(block_id.to_owned()))
            .into(),
    )
}

pub fn render(p: &Proposal) -> Card {
    let title = format!(
        "{} {} ({})",
        verb(p.action),
        p.target.display_name,
        p.target.email
    );
    let fields = vec![
        md!(format!("*1Password state*\n{}", p.target.state.as_str())),
        md!(format!(
            "*Requested by*\n{}",
            truncate(&requesters(p), 1900)
        )),
        md!(format!("*Source*\n{}", source(p))),
        md!(format!("*Approvals*\n{}", tally(p))),
    ];
    let mut blocks: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(pt!(truncate(&title, 150))).into(),
        SlackSectionBlock::new().with_fields(fields).into(),
        SlackSectionBlock::new()
            .with_text(md!(format!("*Reason*\n{}", escape(p.reason.as_str()))))
            .into(),
    ];
    if !p.evidence.is_empty() {
        blocks.push(
            SlackContextBlock::new(vec![context(format!(
                "+{} further report(s) folded in; see the thread",
                p.evidence.len()
            ))])
            .into(),
        );
    }
    blocks.push(
        SlackSectionBlock::new()
            .with_text(md!(status_line(p)))
            .into(),
    );
    blocks.extend(buttons(p, "decision"));
    blocks.push(SlackContextBlock::new(vec![context(format!("proposal `{}`", p.id))]).into());
    // The id in the text lets a lost post be found again in the channel's history.
    let text = format!(
        "{}: {} ({}) · proposal {}",
        escape(&title),
        p.status,
        tally(p),
        p.id
    );
    Card { text, blocks }
}

fn context(text: String) -> SlackContextBlockElement {
    SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(text))
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    }
}

/// The half-TTL reminder, mentioning whoever may still decide.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::domain::{Approval, Reason, SlackUserId};

    /// The domain's sample proposal, with a reason that tries to mention and disguise a link.
    fn proposal(action: Action, required: u32) -> Proposal {
        let mut p = fixtures::proposal(action, required);
        p.reason = Reason::parse("<!channel> look at <https://evil.example|this>").unwrap();
        p
    }

    fn json(card: &Card) -> String {
        serde_json::to_string(&card.blocks).unwrap()
    }

    #[test]
    fn the_notification_text_cannot_mention_either() {
        let mut p = proposal(Action::Suspend, 1);
        p.target.display_name = "<!channel> <https://evil.example|Approve here>".into();
        let card = render(&p);
        assert!(!card.text.contains("<!channel>"), "{}", card.text);
        assert!(card.text.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn an_alert_link_shows_where_it_goes() {
        let mut p = proposal(Action::Suspend, 1);
        p.source.alert_url = Some("https://evil.example/x|https://falcon.example.com".into());
        let blocks = json(&render(&p));
        assert!(
            blocks.contains("https://evil.example/x%7Chttps://falcon.example.com|alert"),
            "{blocks}"
        );
    }

    #[test]
    fn a_pending_card_has_approve_and_deny() {
        let card = render(&proposal(Action::Suspend, 1));
        let blocks = json(&card);
        assert!(blocks.contains(r#""action_id":"approve""#));
        assert!(blocks.contains(r#""action_id":"deny""#));
        assert!(!blocks.contains(r#""confirm""#));
    }

    #[test]
    fn a_restore_approval_asks_for_confirmation() {
        let blocks = json(&render(&proposal(Action::Restore, 2)));
        assert!(blocks.contains(r#""confirm""#));
    }

    #[test]
    fn a_decided_card_has_no_buttons() {
        let mut p = proposal(Action::Suspend, 1);
        p.status = Status::Executed;
        p.execution.outcome = Some(Outcome::Suspended);
        let blocks = json(&render(&p));
        assert!(!blocks.contains("action_id"));
        assert!(blocks.contains("Executed"));
    }

    #[test]
    fn a_failed_card_offers_retry_only() {
        let mut p = proposal(Action::Suspend, 1);
        p.status = Status::Failed;
        let blocks = json(&render(&p));
        assert!(blocks.contains(r#""action_id":"retry""#));
        assert!(!blocks.contains(r#""action_id":"approve""#));
    }

    #[test]
    fn caller_text_cannot_mention_or_link() {
        let blocks = json(&render(&proposal(Action::Suspend, 1)));
        assert!(!blocks.contains("<!channel>"));
        assert!(blocks.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn the_tally_says_when_a_second_approver_is_needed() {
        let mut p = proposal(Action::Restore, 2);
        assert_eq!(tally(&p), "0 of 2 approvals — needs 2 approvers");
        p.approvals.push(Approval {
            slack_user_id: SlackUserId::parse("U0BOB").unwrap(),
            name: "Bob".into(),
            at: chrono::Utc::now(),
            proof: Proof::Click,
        });
        assert_eq!(tally(&p), "1 of 2 approvals — needs a second approver");
    }
}
