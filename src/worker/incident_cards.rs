//! Slack-lane jobs of incident cards: the first row's job posts the card for every row seated
//! on it; a row's update re-renders its whole card once for all the updates filed before the
//! render read the rows.

use chrono::Utc;

use super::cards::{post_card_once, retry, withdraw_duplicate};
use super::JobResult;
use crate::app::incidents::card_posted;
use crate::app::state::AppState;
use crate::domain::incident::Seat;
use crate::domain::{Proposal, SlackRef};
use crate::ledger::{ClaimedJob, EventKind};
use crate::slack::card::Card;
use crate::slack::incident_card;

/// Card `seat.card` of `seat.incident` as the ledger has it now; `None` if the incident is gone.
async fn render(state: &AppState, seat: Seat) -> Result<Option<Card>, sqlx::Error> {
    let Some(summary) = state.ledger.incident(seat.incident).await? else {
        return Ok(None);
    };
    let rows = state.ledger.card_members(seat.incident, seat.card).await?;
    let last = rows
        .iter()
        .filter_map(|p| p.incident)
        .map(|s| s.seq)
        .max()
        .unwrap_or(0);
    let covered = state.ledger.incident_members(seat.incident, last).await?;
    Ok(Some(incident_card::render(
        &summary, seat.card, &rows, &covered,
    )))
}

fn same(a: &Card, b: &Card) -> bool {
    a.text == b.text && serde_json::to_value(&a.blocks).ok() == serde_json::to_value(&b.blocks).ok()
}

/// Posts the card `lead` is the first row of, and records it as the card of every row on it.
pub(super) async fn post(
    state: &AppState,
    claimed: &ClaimedJob,
    lead: &Proposal,
    seat: Seat,
) -> Result<JobResult, sqlx::Error> {
    let Some(rendered) = render(state, seat).await? else {
        return Ok(JobResult::Abandon(
            "the incident is not in the ledger".into(),
        ));
    };
    let channel = state.slack_settings.channel.clone();
    let ts = match post_card_once(state, claimed, lead, &channel, rendered.clone()).await {
        Ok(ts) => ts,
        Err(error) => return Ok(retry(state, claimed, lead, error)),
    };
    let posted = SlackRef {
        channel: channel.clone(),
        ts: ts.clone(),
    };
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let rows = tx.card_members(seat.incident, seat.card).await?;
    let recorded = rows
        .iter()
        .find(|p| p.id == lead.id)
        .and_then(|p| p.slack.clone())
        .filter(|card| card.ts != ts);
    if let Some(recorded) = recorded {
        // Another worker posted this card first (this one's lease passed mid-post).
        tx.complete_job(claimed, now).await?;
        tx.commit().await?;
        withdraw_duplicate(state, &channel, &ts, &recorded).await;
        return Ok(JobResult::Done);
    }
    for mut row in rows.into_iter().filter(|p| p.slack.is_none()) {
        row.slack = Some(posted.clone());
        tx.save_proposal(&row, now).await?;
        tx.append(
            Some(row.id),
            EventKind::SlackCardPosted,
            "system",
            card_posted(&posted, seat),
            now,
        )
        .await?;
    }
    tx.complete_job(claimed, now).await?;
    tx.commit().await?;
    tracing::info!(incident = %seat.incident, card = seat.card, %ts, "incident card posted");
    // Rows may have joined or changed while the post was in flight: show them now.
    if let Some(now_shown) = render(state, seat).await? {
        if !same(&now_shown, &rendered) {
            let updated = state
                .slack
                .update_message(&channel, &ts, &now_shown.text, now_shown.blocks)
                .await;
            if let Err(error) = updated {
                tracing::warn!(incident = %seat.incident, %error, "could not refresh the new incident card");
            }
        }
    }
    Ok(JobResult::Done)
}

/// Re-renders the card `row` is on, settling every update of its rows filed before the read.
pub(super) async fn update(
    state: &AppState,
    claimed: &ClaimedJob,
    row: &Proposal,
    seat: Seat,
    at: &SlackRef,
) -> Result<JobResult, sqlx::Error> {
    let upto = state.ledger.newest_job().await?;
    let Some(rendered) = render(state, seat).await? else {
        return Ok(JobResult::Abandon(
            "the incident is not in the ledger".into(),
        ));
    };
    if let Err(error) = state
        .slack
        .update_message(&at.channel, &at.ts, &rendered.text, rendered.blocks)
        .await
    {
        return Ok(retry(state, claimed, row, error));
    }
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    tx.settle_card_updates(seat.incident, seat.card, upto, now)
        .await?;
    tx.complete_job(claimed, now).await?;
    tx.commit().await?;
    Ok(JobResult::Done)
}
