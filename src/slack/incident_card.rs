//! The incident card: many suspensions from one burst on one message, a row each with its own
//! Approve / Deny, and "Approve all" for every row shown up to this card. Rendered whole from
//! the ledger, as a single card is.

use slack_morphism::prelude::*;

use super::card::{approvers, slack_time, truncate, Card, APPROVE, DENY, RETRY};
use super::mrkdwn::escape;
use crate::domain::incident::{IncidentId, ROWS_PER_CARD};
use crate::domain::{Outcome, Proposal, Status};
use crate::ledger::IncidentSummary;

/// The action of "Approve all"; its value is `<incident id>:<last seq shown>`.
pub const APPROVE_ALL: &str = "approve_all";
/// The action of a row's menu; each option's value is `<approve|deny|retry>:<proposal id>`.
pub const ROW: &str = "row";

/// How many pending users the confirm dialog names before "and N more".
const NAMED_IN_CONFIRM: usize = 3;

/// Reads an "Approve all" value: the incident and the last member shown.
pub fn approve_all_value(raw: &str) -> Option<(IncidentId, u32)> {
    let (incident, upto) = raw.split_once(':')?;
    Some((IncidentId::parse(incident)?, upto.parse().ok()?))
}

/// Reads a row menu's choice as the card button it stands for: (`approve`, proposal id).
pub fn row_choice(raw: &str) -> Option<(&'static str, &str)> {
    let (verb, id) = raw.split_once(':')?;
    let action = [APPROVE, DENY, RETRY].into_iter().find(|a| *a == verb)?;
    Some((action, id))
}

fn choice(label: &str, verb: &str, p: &Proposal) -> SlackBlockChoiceItem<SlackBlockPlainTextOnly> {
    SlackBlockChoiceItem::new(pt!(label), format!("{verb}:{}", p.id))
}

/// A row's menu: what may be done with it now.
fn menu(p: &Proposal) -> Option<SlackBlockOverflowElement> {
    let options = match p.status {
        Status::Pending => vec![choice("Approve", APPROVE, p), choice("Deny…", DENY, p)],
        Status::Failed => vec![choice("Retry", RETRY, p)],
        _ => return None,
    };
    Some(SlackBlockOverflowElement::new(options).with_action_id(SlackActionId(ROW.to_owned())))
}

fn row_state(p: &Proposal) -> String {
    match p.status {
        Status::Pending => format!(
            ":hourglass_flowing_sand: pending · expires {}",
            slack_time(p.expires_at)
        ),
        Status::Approved => format!(
            ":white_check_mark: approved by {}; executing shortly",
            approvers(p)
        ),
        Status::Executing => format!(":gear: executing (approved by {})", approvers(p)),
        Status::Executed => match p.execution.outcome {
            Some(Outcome::AlreadySuspended) => ":lock: was already suspended".to_owned(),
            _ => format!(":lock: *suspended* (approved by {})", approvers(p)),
        },
        Status::Failed => format!(
            ":warning: *failed*: {} (attempt {})",
            escape(&truncate(
                p.execution.last_error.as_deref().unwrap_or("unknown error"),
                200
            )),
            p.execution.attempts
        ),
        Status::Denied => match &p.denial {
            Some(d) => format!(
                ":no_entry: denied by {}: {}",
                d.slack_user_id
                    .as_ref()
                    .map_or("countersign".to_owned(), |u| format!("<@{u}>")),
                escape(&truncate(d.reason.as_str(), 200))
            ),
            None => ":no_entry: denied".to_owned(),
        },
        Status::Expired => ":alarm_clock: expired undecided".to_owned(),
        Status::Cancelled => ":heavy_minus_sign: cancelled by its requester".to_owned(),
        Status::Superseded => ":fast_forward: superseded by a newer decision".to_owned(),
    }
}

fn row(p: &Proposal) -> SlackBlock {
    let s = &p.source;
    let mut facts = vec![escape(&truncate(&s.platform, 60))];
    if let Some(confidence) = s.confidence {
        facts.push(format!("{confidence:?} confidence").to_lowercase());
    }
    let text = format!(
        "*{}* ({}) — {}\n{} · {}",
        escape(p.target.email.as_str()),
        escape(&truncate(&p.target.display_name, 80)),
        escape(&truncate(p.reason.as_str(), 300)),
        facts.join(" · "),
        row_state(p),
    );
    let mut section = SlackSectionBlock::new()
        .with_text(md!(text))
        .with_block_id(SlackBlockId(format!("row-{}", p.id)));
    if let Some(menu) = menu(p) {
        section = section.with_accessory(menu.into());
    }
    section.into()
}

/// What the rows' outcomes add up to, once none is pending.
fn outcomes(members: &[Proposal]) -> String {
    let count = |f: &dyn Fn(&Proposal) -> bool| members.iter().filter(|p| f(p)).count();
    let parts = [
        (
            count(&|p| {
                p.status == Status::Executed
                    && p.execution.outcome != Some(Outcome::AlreadySuspended)
            }),
            "suspended",
        ),
        (
            count(&|p| p.execution.outcome == Some(Outcome::AlreadySuspended)),
            "already suspended",
        ),
        (count(&|p| p.status == Status::Failed), "failed"),
        (count(&|p| p.status == Status::Denied), "denied"),
        (count(&|p| p.status == Status::Expired), "expired"),
        (
            count(&|p| matches!(p.status, Status::Cancelled | Status::Superseded)),
            "withdrawn",
        ),
        (
            count(&|p| matches!(p.status, Status::Approved | Status::Executing)),
            "executing",
        ),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn approve_all(summary: &IncidentSummary, covered: &[Proposal]) -> Option<SlackBlock> {
    let pending: Vec<&Proposal> = covered
        .iter()
        .filter(|p| p.status == Status::Pending)
        .collect();
    let last = covered
        .iter()
        .filter_map(|p| p.incident)
        .map(|s| s.seq)
        .max()?;
    if pending.is_empty() {
        return None;
    }
    let n = pending.len();
    let mut named: Vec<String> = pending
        .iter()
        .take(NAMED_IN_CONFIRM)
        .map(|p| escape(&truncate(p.target.email.as_str(), 60)))
        .collect();
    if n > NAMED_IN_CONFIRM {
        named.push(format!("and {} more", n - NAMED_IN_CONFIRM));
    }
    let label = if n == 1 {
        "Approve the 1 pending suspension".to_owned()
    } else {
        format!("Approve all {n} suspensions")
    };
    let button = SlackBlockButtonElement::new(pt!(label))
        .with_action_id(SlackActionId(APPROVE_ALL.to_owned()))
        .with_value(format!("{}:{last}", summary.id))
        .with_style(SlackBlockButtonStyle::Primary)
        .with_confirm(SlackBlockConfirmItem::new(
            pt!(format!("Approve {n} suspensions?")),
            md!(truncate(
                &format!(
                    "This approves the {n} pending suspensions on this card and the ones above it: {}. Rows you may not approve are left as they are and listed for you.",
                    named.join(", ")
                ),
                300
            )),
            pt!("Approve all"),
            pt!("Cancel"),
        ));
    Some(
        SlackActionsBlock::new(vec![button.into()])
            .with_block_id(SlackBlockId("approve-all".to_owned()))
            .into(),
    )
}

/// Card `card` of an incident: its `rows`, and "Approve all" over `covered` (every member up
/// to this card's last row).
pub fn render(
    summary: &IncidentSummary,
    card: u32,
    rows: &[Proposal],
    covered: &[Proposal],
) -> Card {
    let key = match &summary.alert_id {
        Some(alert) => format!("alert {}", escape(&truncate(alert, 80))),
        None => "arrived together".to_owned(),
    };
    let title = format!("Incident: {} suspensions proposed", summary.members);
    let first = rows
        .iter()
        .filter_map(|p| p.incident)
        .map(|s| s.seq)
        .min()
        .unwrap_or(0);
    let last = rows
        .iter()
        .filter_map(|p| p.incident)
        .map(|s| s.seq)
        .max()
        .unwrap_or(0);
    let pending = rows.iter().filter(|p| p.status == Status::Pending).count();
    let standing = if pending == 0 {
        format!("All decided: {}", outcomes(rows))
    } else {
        format!("{pending} of {} pending · {}", rows.len(), outcomes(rows))
    };
    let mut blocks: Vec<SlackBlock> = vec![
        SlackHeaderBlock::new(pt!(truncate(&title, 150))).into(),
        SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
            SlackBlockMarkDownText::new(format!(
                "{key} · card {card} of {} · rows {first}–{last} · {standing}",
                summary.cards
            )),
        )])
        .into(),
    ];
    blocks.extend(approve_all(summary, covered));
    blocks.extend(rows.iter().take(ROWS_PER_CARD as usize).map(row));
    blocks.push(
        SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
            SlackBlockMarkDownText::new(format!(
                "incident `{}` · decide a row alone from its ⋯ menu",
                summary.id
            )),
        )])
        .into(),
    );
    let text = format!("{title} ({key}): {standing} · incident {}", summary.id);
    Card { text, blocks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::domain::incident::Seat;
    use crate::domain::Action;

    fn members(n: u32) -> (IncidentSummary, Vec<Proposal>) {
        let incident = IncidentId::new();
        let rows = (1..=n)
            .map(|seq| {
                let mut p = fixtures::proposal(Action::Suspend, 1);
                p.id = crate::domain::ProposalId::new();
                p.incident = Some(Seat {
                    incident,
                    card: 1,
                    seq,
                });
                p
            })
            .collect();
        let summary = IncidentSummary {
            id: incident,
            alert_id: None,
            members: n,
            cards: 1,
        };
        (summary, rows)
    }

    #[test]
    fn a_full_card_stays_under_slacks_fifty_blocks() {
        let (summary, rows) = members(ROWS_PER_CARD);
        let card = render(&summary, 1, &rows, &rows);
        assert!(card.blocks.len() <= 50, "{} blocks", card.blocks.len());
    }

    #[test]
    fn approve_all_names_the_last_member_shown() {
        let (summary, rows) = members(5);
        let card = render(&summary, 1, &rows, &rows);
        let json = serde_json::to_string(&card.blocks).unwrap();
        assert!(
            json.contains(&format!("\"value\":\"{}:5\"", summary.id)),
            "{json}"
        );
        assert!(json.contains("Approve all 5 suspensions"), "{json}");
    }

    #[test]
    fn a_row_menu_offers_approve_and_deny_while_pending() {
        let (_, rows) = members(1);
        let json = serde_json::to_string(&row(&rows[0])).unwrap();
        assert!(json.contains(&format!("approve:{}", rows[0].id)), "{json}");
        assert!(json.contains(&format!("deny:{}", rows[0].id)), "{json}");
    }

    #[test]
    fn row_choices_read_back_as_the_card_buttons() {
        assert_eq!(row_choice("approve:abc"), Some((APPROVE, "abc")));
        assert_eq!(row_choice("deny:abc"), Some((DENY, "abc")));
        assert_eq!(row_choice("launch:abc"), None);
    }
}
