//! Escalation: a proposal still pending `escalate_after` past its card is brought to the
//! policy's `escalate_to` — once, across replicas (the ledger marks it in the same
//! transaction), and never after a decision. Facts and jobs only; `slack/` words them.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::incidents::CardVoices;
use crate::app::state::AppState;
use crate::domain::escalation::{card_posted_at, due};
use crate::domain::Announcement;
use crate::ledger::{EventKind, Job};

/// Escalates every pending proposal that is due; returns how many.
pub async fn escalate_due(state: &AppState, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let mut escalated = 0;
    let mut voices = CardVoices::default();
    for proposal in state.ledger.unescalated_pending().await? {
        let Some(escalation) = state.policy.escalation(proposal.action) else {
            continue;
        };
        let posted = proposal
            .slack
            .as_ref()
            .and_then(|card| card_posted_at(&card.ts));
        let Some(posted) = posted else {
            continue;
        };
        if !due(posted, escalation, now) || proposal.is_expired(now) {
            continue;
        }
        // An incident card is escalated once, by its first pending row; the others are
        // marked with it.
        let speaks = voices.speaks(state, &proposal).await?;
        let mut tx = state.ledger.begin().await?;
        // Pending and not yet escalated, checked under the write lock: one replica wins.
        if !tx.mark_escalated(proposal.id, now).await? {
            continue;
        }
        let channels = escalation.post_in(&state.slack_settings.channel);
        let mut payload = json!({
            "after_seconds": escalation.after.num_seconds(),
            "channels": channels,
            "groups": escalation.groups,
            "users": escalation.users,
        });
        if !speaks {
            payload["with_incident_card"] = json!(true);
            tx.append(
                Some(proposal.id),
                EventKind::ProposalEscalated,
                "system",
                payload,
                now,
            )
            .await?;
            tx.commit().await?;
            escalated += 1;
            continue;
        }
        tx.append(
            Some(proposal.id),
            EventKind::ProposalEscalated,
            "system",
            payload,
            now,
        )
        .await?;
        for channel in &channels {
            let job = Job::Escalate {
                to: (*channel).to_owned(),
                mention: escalation.groups.clone(),
            };
            tx.enqueue(proposal.id, job, now).await?;
        }
        for user in &escalation.users {
            let job = Job::Escalate {
                to: user.to_string(),
                mention: vec![],
            };
            tx.enqueue(proposal.id, job, now).await?;
        }
        let fact = Announcement::Escalated {
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            groups: escalation.groups.clone(),
            users: escalation.users.clone(),
        };
        tx.enqueue(proposal.id, Job::Announce { fact }, now).await?;
        tx.commit().await?;
        tracing::info!(proposal_id = %proposal.id, "escalated");
        escalated += 1;
    }
    if escalated > 0 {
        state.wake_worker();
    }
    Ok(escalated)
}
