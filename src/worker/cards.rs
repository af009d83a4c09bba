//! Slack-lane jobs: post the card once, re-render it after every change, reply in its thread.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{backoff, incident_cards, JobResult};
use crate::app::incidents::{self, Placement};
use crate::app::state::AppState;
use crate::domain::{Proposal, SlackRef, Status};
use crate::ledger::{ClaimedJob, EventKind, Job};
use crate::slack::{announce, card, escalation, SlackError};

/// After this many tries a Slack job is given up; the ledger already holds the decision. A
/// pending proposal's card is the exception: without it nobody can decide, so it is tried for
/// as long as the proposal is pending.
const MAX_ATTEMPTS: u32 = 8;

pub(super) fn retry(
    state: &AppState,
    claimed: &ClaimedJob,
    proposal: &Proposal,
    error: SlackError,
) -> JobResult {
    // An incident card's first row posts it for every row: awaited whatever that row's state.
    let card_awaited = claimed.job == Job::PostCard
        && (proposal.status == Status::Pending || proposal.incident.is_some());
    if claimed.attempts >= MAX_ATTEMPTS && !card_awaited {
        return JobResult::Abandon(error.to_string());
    }
    let cap = if card_awaited {
        state.timing.card_retry_cap
    } else {
        Duration::from_secs(300)
    };
    let after = error
        .retry_after
        .unwrap_or_else(|| backoff(claimed.attempts, cap));
    JobResult::Retry {
        after: if card_awaited { after.min(cap) } else { after },
        error: error.to_string(),
    }
}

/// Posts the card, unless an earlier attempt already did. `chat.postMessage` has no
/// idempotency key, and the claim of this job was recorded before the earlier attempt posted;
/// so a retried claim first looks for the card in the channel, where the earlier attempt may
/// have put it before its answer was lost or the process died.
pub(super) async fn post_card_once(
    state: &AppState,
    claimed: &ClaimedJob,
    proposal: &Proposal,
    channel: &str,
    rendered: card::Card,
) -> Result<String, SlackError> {
    if claimed.attempts > 1 {
        let since = proposal.created_at - chrono::Duration::minutes(1);
        match state
            .slack
            .find_card(channel, since, &proposal.id.to_string())
            .await
        {
            Ok(Some(ts)) => {
                tracing::info!(proposal_id = %proposal.id, %ts, "found the card an earlier attempt posted");
                return Ok(ts);
            }
            Ok(None) => {}
            // Without history (e.g. the channels:history scope missing) a lost card is worse
            // than a duplicate one: responders could not act at all.
            Err(error) => {
                tracing::warn!(proposal_id = %proposal.id, %error, "could not look for an earlier card")
            }
        }
    }
    state
        .slack
        .post_card(
            channel,
            &rendered.text,
            rendered.blocks,
            &proposal.id.to_string(),
        )
        .await
}

pub(super) async fn run(state: &AppState, claimed: &ClaimedJob) -> Result<JobResult, sqlx::Error> {
    let id = claimed.proposal_id;
    let Some(proposal) = state.ledger.proposal(id).await? else {
        return Ok(JobResult::Abandon("no such proposal".into()));
    };
    let slack = proposal.slack.clone();
    match (&claimed.job, slack) {
        (Job::PostCard, Some(_)) => {
            // Already posted (a retry after the post was recorded): never post a second card.
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        (Job::PostCard, None)
            if proposal.status == Status::Expired && proposal.incident.is_none() =>
        {
            // Its expiry event recorded that no card was ever posted.
            return Ok(JobResult::Abandon(
                "the proposal expired before its card could be posted".into(),
            ));
        }
        (Job::PostCard, None) => {
            match incidents::place(state, claimed, &proposal).await? {
                Placement::Own => {}
                Placement::Seated => return Ok(JobResult::Done),
                Placement::Lead(seat) => {
                    return incident_cards::post(state, claimed, &proposal, seat).await
                }
            }
            let channel = state.slack_settings.channel.clone();
            let rendered = card::render(&proposal);
            let ts = match post_card_once(state, claimed, &proposal, &channel, rendered).await {
                Ok(ts) => ts,
                Err(error) => return Ok(retry(state, claimed, &proposal, error)),
            };
            let now = Utc::now();
            let mut tx = state.ledger.begin().await?;
            let mut current = tx.proposal(id).await?.expect("the proposal exists");
            if let Some(recorded) = current.slack.clone().filter(|card| card.ts != ts) {
                // Another worker took the job over (this one's lease passed mid-post) and
                // recorded its own card first: that one is the card; this post is withdrawn.
                tx.complete_job(claimed, now).await?;
                tx.commit().await?;
                withdraw_duplicate(state, &channel, &ts, &recorded).await;
                return Ok(JobResult::Done);
            }
            current.slack = Some(SlackRef {
                channel: channel.clone(),
                ts: ts.clone(),
            });
            tx.save_proposal(&current, now).await?;
            tx.append(
                Some(id),
                EventKind::SlackCardPosted,
                "system",
                json!({"channel": channel, "ts": ts}),
                now,
            )
            .await?;
            tx.complete_job(claimed, now).await?;
            tx.commit().await?;
            tracing::info!(proposal_id = %id, %channel, %ts, "card posted");
            // The proposal may have changed while the post was in flight; show its state now.
            if current.status != proposal.status {
                let rendered = card::render(&current);
                if let Err(error) = state
                    .slack
                    .update_message(&channel, &ts, &rendered.text, rendered.blocks)
                    .await
                {
                    tracing::warn!(proposal_id = %id, %error, "could not refresh the new card");
                }
            }
        }
        (Job::Audit { fact }, _) => {
            let text = announce::render(fact, &proposal);
            let channel = state
                .slack_settings
                .audit_channel
                .as_ref()
                .unwrap_or(&state.slack_settings.channel);
            if let Err(error) = state.slack.post_message(channel, &text, vec![], None).await {
                return Ok(retry(state, claimed, &proposal, error));
            }
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        // An incident row waiting for its card: the card's post shows its state then, and its
        // thread is where the row's news goes.
        (Job::UpdateCard, None) if proposal.incident.is_some() => {
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        (Job::Announce { .. } | Job::ThreadReply { .. }, None) if proposal.incident.is_some() => {
            return Ok(JobResult::Retry {
                after: state.timing.card_retry_cap,
                error: "its incident card is not posted yet".into(),
            });
        }
        (_, None) => return Ok(JobResult::Abandon("the proposal has no card".into())),
        (Job::UpdateCard, Some(at)) if proposal.incident.is_some() => {
            let seat = proposal.incident.expect("checked");
            return incident_cards::update(state, claimed, &proposal, seat, &at).await;
        }
        // A row's approval and outcome show on the row; the shared thread keeps the rest.
        (Job::Announce { fact }, Some(_)) if proposal.incident.is_some() && fact.shown_on_row() => {
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        (Job::UpdateCard, Some(at)) => {
            let rendered = card::render(&proposal);
            if let Err(error) = state
                .slack
                .update_message(&at.channel, &at.ts, &rendered.text, rendered.blocks)
                .await
            {
                return Ok(retry(state, claimed, &proposal, error));
            }
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        (Job::Announce { fact }, Some(at)) => {
            let mut text = announce::render(fact, &proposal);
            if proposal.incident.is_some() {
                // The thread is shared by the card's rows: say which one this is about.
                text = format!("*{}*: {text}", proposal.target.email);
            }
            return reply(state, claimed, &proposal, &at, &text).await;
        }
        (Job::ThreadReply { text }, Some(at)) => {
            return reply(state, claimed, &proposal, &at, text).await;
        }
        (Job::Escalate { .. }, Some(_)) if proposal.status != Status::Pending => {
            return Ok(JobResult::Abandon(
                "decided before its escalation was posted".into(),
            ));
        }
        (Job::Escalate { to, mention }, Some(at)) => {
            let text = escalation::render(&proposal, mention, &at);
            if let Err(error) = state.slack.post_message(to, &text, vec![], None).await {
                return Ok(retry(state, claimed, &proposal, error));
            }
            state.ledger.complete_job(claimed, Utc::now()).await?;
        }
        (Job::Execute | Job::Callback { .. }, _) => {
            return Ok(JobResult::Abandon(
                "not a Slack job; it was filed in the wrong lane".into(),
            ));
        }
    }
    Ok(JobResult::Done)
}

/// Takes the buttons off a second card for one proposal, pointing at the first.
pub(super) async fn withdraw_duplicate(state: &AppState, channel: &str, ts: &str, card: &SlackRef) {
    let text = format!(
        "This card was posted twice; decide on the first one (ts {}).",
        card.ts
    );
    if let Err(error) = state.slack.update_message(channel, ts, &text, vec![]).await {
        tracing::warn!(%error, %ts, "could not withdraw a duplicate card");
    }
}

/// A reply in the card's thread.
async fn reply(
    state: &AppState,
    claimed: &ClaimedJob,
    proposal: &Proposal,
    card: &SlackRef,
    text: &str,
) -> Result<JobResult, sqlx::Error> {
    if let Err(error) = state
        .slack
        .post_message(&card.channel, text, vec![], Some(&card.ts))
        .await
    {
        return Ok(retry(state, claimed, proposal, error));
    }
    state.ledger.complete_job(claimed, Utc::now()).await?;
    Ok(JobResult::Done)
}
