//! Expires pending proposals whose time ran out, so their cards lose their buttons even when
//! nobody clicks; reminds half way, and escalates those the policy says to.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::app::incidents::CardVoices;
use crate::app::state::AppState;
use crate::app::{decisions, escalation};
use crate::domain::Announcement;
use crate::ledger::Job;

/// Posts the half-TTL reminder for every pending proposal that is due one; returns how many.
async fn remind_once(state: &AppState) -> Result<usize, sqlx::Error> {
    let now = Utc::now();
    let mut reminded = 0;
    let mut voices = CardVoices::default();
    for proposal in state.ledger.unreminded_pending().await? {
        if !proposal.reminder_due(now) || proposal.is_expired(now) {
            continue;
        }
        // An incident card is reminded of once, by its first pending row.
        let speaks = voices.speaks(state, &proposal).await?;
        let mut tx = state.ledger.begin().await?;
        if tx.mark_reminded(proposal.id, now).await? && speaks {
            let approvers = &state.policy.approvers;
            let fact = Announcement::Reminder {
                users: approvers.users.clone(),
                groups: approvers.groups.clone(),
            };
            tx.enqueue(proposal.id, Job::Announce { fact }, now).await?;
            reminded += 1;
        }
        tx.commit().await?;
    }
    if reminded > 0 {
        state.wake_worker();
    }
    Ok(reminded)
}

/// Expires every overdue proposal once; returns how many it expired.
async fn sweep_once(state: &AppState) -> Result<usize, sqlx::Error> {
    let mut expired = 0;
    for id in state.ledger.expired_pending(Utc::now()).await? {
        match decisions::expire(state, id).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(error) => tracing::error!(proposal_id = %id, %error, "could not expire"),
        }
    }
    Ok(expired)
}

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        if let Err(error) = sweep_once(&state).await {
            tracing::error!(%error, "expiry sweep failed");
        }
        if let Err(error) = remind_once(&state).await {
            tracing::error!(%error, "reminder sweep failed");
        }
        if let Err(error) = escalation::escalate_due(&state, Utc::now()).await {
            tracing::error!(%error, "escalation sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(state.timing.sweep_every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
