//! An older action never undoes a newer decision (DESIGN §2): when a proposal about a user is
//! approved, every older decision about that user that has not started its call ends
//! `superseded`, and the executor checks again before every attempt of one that has.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::domain::{Announcement, Proposal, ProposalId};
use crate::ledger::{EventKind, Job, Tx};

/// Ends `proposal` superseded by `newer`: its event, card, thread reply and callback, in the
/// caller's transaction.
pub(crate) async fn record(
    tx: &mut Tx,
    mut proposal: Proposal,
    newer: ProposalId,
    now: DateTime<Utc>,
) -> sqlx::Result<Proposal> {
    let was = proposal.status;
    if proposal.supersede(newer, now).is_err() {
        return Ok(proposal);
    }
    let payload = json!({
        "superseded_by": newer.to_string(),
        "was": was.as_str(),
        "why": "a newer decision about the same 1Password user was approved after this one; this proposal makes no call",
    });
    tx.append(
        Some(proposal.id),
        EventKind::ProposalSuperseded,
        "system",
        payload,
        now,
    )
    .await?;
    tx.save_proposal(&proposal, now).await?;
    tx.enqueue(proposal.id, Job::UpdateCard, now).await?;
    tx.enqueue(
        proposal.id,
        Job::Announce {
            fact: Announcement::Superseded { by: newer },
        },
        now,
    )
    .await?;
    tx.enqueue_callback(&proposal, now).await?;
    tracing::info!(proposal_id = %proposal.id, superseded_by = %newer, "proposal superseded");
    Ok(proposal)
}

/// `approved` was just approved: older approved or failed decisions about the same user end
/// superseded by it. One already executing is left to its executor, which checks before its
/// next attempt (its call may be in flight now).
pub(crate) async fn supersede_older(
    tx: &mut Tx,
    approved: &Proposal,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    for older in tx.older_waiting_decisions(approved).await? {
        record(tx, older, approved.id, now).await?;
    }
    Ok(())
}
