//! Decisions on a proposal: approve, deny, cancel, expire and retry. Each reads the proposal
//! inside a write transaction, asks the domain for the transition, and commits the new state,
//! its ledger events and the jobs it causes together. A refusal commits nothing, except that
//! a click on a proposal whose time ran out records the expiry it discovered.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::state::AppState;
use crate::domain::authority::{Act, Proof, Since};
use crate::domain::{
    Announcement, Cancel, Decider, Proposal, ProposalId, Reason, Refusal, Requester, Source, Vote,
};
use crate::ledger::{EventKind, Job, Tx};
use crate::onepassword::OpError;

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("{0}")]
    Refused(Refusal),
    #[error("no proposal has that id")]
    NotFound,
    #[error("the ledger could not record the decision: {0}")]
    Storage(#[from] sqlx::Error),
    /// What the decision depends on could not be read from 1Password, so it was refused.
    #[error("countersign could not read the user's state from 1Password ({0}), so it cannot tell whether the approval still stands; nothing was changed. Try again.")]
    Unverified(OpError),
}

fn actor(decider: &Decider) -> String {
    format!("slack:{}", decider.slack_user_id)
}

async fn load(tx: &mut Tx, id: ProposalId) -> Result<Proposal, DecisionError> {
    tx.proposal(id).await?.ok_or(DecisionError::NotFound)
}

/// Saves the proposal and asks for its card to be re-rendered and, when its new status calls
/// for one, a callback; all inside the caller's transaction.
async fn stage(tx: &mut Tx, proposal: &Proposal, now: DateTime<Utc>) -> Result<(), DecisionError> {
    tx.save_proposal(proposal, now).await?;
    tx.enqueue(proposal.id, Job::UpdateCard, now).await?;
    tx.enqueue_callback(proposal, now).await?;
    Ok(())
}

/// Stages the proposal and commits.
async fn finish(
    state: &AppState,
    mut tx: Tx,
    proposal: &Proposal,
    now: DateTime<Utc>,
) -> Result<(), DecisionError> {
    stage(&mut tx, proposal, now).await?;
    tx.commit().await?;
    state.wake_worker();
    Ok(())
}

/// Records, inside the caller's transaction, that a pending proposal's time ran out.
pub(crate) async fn record_expiry(
    tx: &mut Tx,
    mut proposal: Proposal,
    now: DateTime<Utc>,
) -> Result<(), DecisionError> {
    proposal.expire(now).map_err(DecisionError::Refused)?;
    // A proposal whose card never reached Slack expired unseen; the record says so.
    let payload = json!({
        "expires_at": crate::ledger::timestamp(proposal.expires_at),
        "approvals": proposal.approvals_count(),
        "card_posted": proposal.slack.is_some(),
    });
    tx.append(
        Some(proposal.id),
        EventKind::ProposalExpired,
        "system",
        payload,
        now,
    )
    .await?;
    stage(tx, &proposal, now).await
}

/// Records the expiry a late click discovered, then reports the refusal.
async fn expire_in(
    state: &AppState,
    mut tx: Tx,
    proposal: Proposal,
    now: DateTime<Utc>,
) -> Result<(), DecisionError> {
    record_expiry(&mut tx, proposal, now).await?;
    tx.commit().await?;
    state.wake_worker();
    Ok(())
}

/// What an approving vote proved, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteProof {
    Click,
    Passkey {
        credential_id: String,
        user_verified: bool,
    },
}

impl VoteProof {
    fn proof(&self) -> Proof {
        match self {
            VoteProof::Click => Proof::Click,
            VoteProof::Passkey { .. } => Proof::Passkey,
        }
    }

    fn record(&self) -> serde_json::Value {
        match self {
            VoteProof::Click => json!({"method": "click"}),
            VoteProof::Passkey {
                credential_id,
                user_verified,
            } => {
                json!({"method": "passkey", "credential_id": credential_id, "user_verified": user_verified})
            }
        }
    }
}

/// An approving click. Where the policy asks for a passkey it counts nothing: the refusal
/// (`PasskeyNeeded`) tells the adapter to offer the step-up link instead.
pub async fn approve(
    state: &AppState,
    id: ProposalId,
    decider: &Decider,
) -> Result<(Proposal, Vote), DecisionError> {
    approve_via(state, id, decider, None).await
}

/// An approving click made through `via` (an incident card's "Approve all"), which the
/// recorded approval names.
pub async fn approve_via(
    state: &AppState,
    id: ProposalId,
    decider: &Decider,
    via: Option<&serde_json::Value>,
) -> Result<(Proposal, Vote), DecisionError> {
    let mut tx = state.ledger.begin().await?;
    // Read the clock once the write lock is held: the decision commits at about this time.
    let now = Utc::now();
    let proposal = load(&mut tx, id).await?;
    match record_approval(
        state,
        &mut tx,
        proposal.clone(),
        decider,
        &VoteProof::Click,
        via,
        now,
    )
    .await
    {
        Ok((approved, vote)) => {
            tx.commit().await?;
            state.wake_worker();
            tracing::info!(proposal_id = %id, approver = %decider.slack_user_id, ?vote, "approval recorded");
            Ok((approved, vote))
        }
        Err(DecisionError::Refused(refusal @ Refusal::Expired(_))) => {
            expire_in(state, tx, proposal, now).await?;
            Err(DecisionError::Refused(refusal))
        }
        Err(error) => Err(error),
    }
}

/// Records `decider`'s approval inside the caller's transaction: the approval row, its
/// events, the execution once enough approvals are in, the thread reply and the new card.
/// A refusal writes nothing.
pub(crate) async fn record_approval(
    state: &AppState,
    tx: &mut Tx,
    mut proposal: Proposal,
    decider: &Decider,
    proof: &VoteProof,
    via: Option<&serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<(Proposal, Vote), DecisionError> {
    let id = proposal.id;
    // The approval's time orders this decision among those about the user: after every one
    // committed before it, whatever the clock of the replica that recorded those.
    let at = tx.decision_time(&proposal.target.id, now).await?;
    let vote = proposal
        .approve(decider, proof.proof(), &state.policy, at)
        .map_err(DecisionError::Refused)?;
    let approval = proposal
        .approvals
        .last()
        .expect("approve adds an approval")
        .clone();
    tx.insert_approval(id, &approval, decider.email.as_ref())
        .await?;
    let mut payload = json!({
        "slack_user_id": decider.slack_user_id, "name": decider.name, "email": decider.email,
        "approvals": proposal.approvals_count(), "required": proposal.approvals_required,
        "proof": proof.record(),
    });
    if let Some(via) = via {
        payload["via"] = via.clone();
    }
    tx.append(
        Some(id),
        EventKind::ApprovalRecorded,
        &actor(decider),
        payload,
        now,
    )
    .await?;
    if vote == Vote::Approved {
        state
            .metrics
            .decided(proposal.action.as_str(), "approved", proposal.created_at);
        let approvers: Vec<_> = proposal
            .approvals
            .iter()
            .map(|a| a.slack_user_id.as_str())
            .collect();
        tx.append(
            Some(id),
            EventKind::ProposalApproved,
            "system",
            json!({"approvers": approvers}),
            now,
        )
        .await?;
        tx.enqueue(id, Job::Execute, now).await?;
        crate::app::supersession::supersede_older(tx, &proposal, now).await?;
    }
    let fact = Announcement::Approved {
        by: decider.slack_user_id.clone(),
        count: proposal.approvals_count(),
        required: proposal.approvals_required,
        passkey: proof.proof() == Proof::Passkey,
    };
    tx.enqueue(id, Job::Announce { fact }, now).await?;
    stage(tx, &proposal, now).await?;
    Ok((proposal, vote))
}

/// Checks, without changing anything, whether `decider` may decide on this proposal now;
/// used before opening the deny dialog.
pub async fn may_decide(
    state: &AppState,
    id: ProposalId,
    decider: &Decider,
) -> Result<Proposal, DecisionError> {
    let proposal = state
        .ledger
        .proposal(id)
        .await?
        .ok_or(DecisionError::NotFound)?;
    proposal
        .may(decider, Act::Deny, &state.policy, Utc::now())
        .map_err(DecisionError::Refused)?;
    Ok(proposal)
}

pub async fn deny(
    state: &AppState,
    id: ProposalId,
    decider: &Decider,
    reason: Reason,
) -> Result<Proposal, DecisionError> {
    let mut tx = state.ledger.begin().await?;
    // Read the clock once the write lock is held: the decision commits at about this time.
    let now = Utc::now();
    let mut proposal = load(&mut tx, id).await?;
    match proposal.deny(decider, reason.clone(), &state.policy, now) {
        Ok(()) => {}
        Err(refusal @ Refusal::Expired(_)) => {
            expire_in(state, tx, proposal, now).await?;
            return Err(DecisionError::Refused(refusal));
        }
        Err(refusal) => return Err(DecisionError::Refused(refusal)),
    }
    let payload = json!({
        "slack_user_id": decider.slack_user_id, "name": decider.name, "email": decider.email,
        "reason": reason.as_str(),
    });
    state
        .metrics
        .decided(proposal.action.as_str(), "denied", proposal.created_at);
    tx.append(
        Some(id),
        EventKind::ProposalDenied,
        &actor(decider),
        payload,
        now,
    )
    .await?;
    let fact = Announcement::Denied {
        by: Some(decider.slack_user_id.clone()),
        reason: reason.as_str().to_owned(),
    };
    tx.enqueue(id, Job::Announce { fact }, now).await?;
    finish(state, tx, &proposal, now).await?;
    tracing::info!(proposal_id = %id, approver = %decider.slack_user_id, "proposal denied");
    Ok(proposal)
}

/// A suspend arrived while a restore of the same user was pending: containment wins, so
/// countersign denies the restore itself (actor `system`), naming the alert.
pub(crate) async fn end_restore_for_new_alert(
    state: &AppState,
    tx: &mut Tx,
    mut restore: Proposal,
    alert: &Source,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let named = match &alert.alert_id {
        Some(id) => id.chars().take(200).collect(),
        None => format!(
            "from {}",
            alert.platform.chars().take(100).collect::<String>()
        ),
    };
    let reason = Reason::parse(&format!("new alert {named} while the restore was pending"))
        .or_else(|_| Reason::parse("new alert while the restore was pending"))
        .expect("a fixed reason of valid length");
    if restore.deny_by_system(reason.clone(), now).is_err() {
        return Ok(());
    }
    state
        .metrics
        .decided(restore.action.as_str(), "denied", restore.created_at);
    let payload = json!({
        "reason": reason.as_str(), "alert_id": alert.alert_id, "platform": alert.platform,
    });
    tx.append(
        Some(restore.id),
        EventKind::ProposalDenied,
        "system",
        payload,
        now,
    )
    .await?;
    let fact = Announcement::Denied {
        by: None,
        reason: reason.as_str().to_owned(),
    };
    tx.enqueue(restore.id, Job::Announce { fact }, now).await?;
    tx.save_proposal(&restore, now).await?;
    tx.enqueue(restore.id, Job::UpdateCard, now).await?;
    tx.enqueue_callback(&restore, now).await?;
    tracing::info!(proposal_id = %restore.id, "pending restore ended by a new alert");
    Ok(())
}

pub async fn cancel(
    state: &AppState,
    id: ProposalId,
    by: &Requester,
) -> Result<Proposal, DecisionError> {
    let mut tx = state.ledger.begin().await?;
    // Read the clock once the write lock is held: the decision commits at about this time.
    let now = Utc::now();
    let mut proposal = load(&mut tx, id).await?;
    let kind = match proposal.cancel(by).map_err(DecisionError::Refused)? {
        Cancel::Cancelled => EventKind::ProposalCancelled,
        // Others still ask for it: only this request is taken back, and the proposal waits.
        Cancel::Withdrawn => EventKind::ProposalRequestWithdrawn,
    };
    tx.append(Some(id), kind, &by.actor(), json!({}), now)
        .await?;
    finish(state, tx, &proposal, now).await?;
    tracing::info!(proposal_id = %id, event = kind.as_str(), "requester took their request back");
    Ok(proposal)
}

/// Expires a pending proposal whose time ran out; `Ok(false)` when it no longer needs it.
pub async fn expire(state: &AppState, id: ProposalId) -> Result<bool, DecisionError> {
    let mut tx = state.ledger.begin().await?;
    // Read the clock once the write lock is held: the decision commits at about this time.
    let now = Utc::now();
    let proposal = load(&mut tx, id).await?;
    match expire_in(state, tx, proposal, now).await {
        Ok(()) => {
            tracing::info!(proposal_id = %id, "proposal expired");
            Ok(true)
        }
        Err(DecisionError::Refused(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

pub async fn retry(
    state: &AppState,
    id: ProposalId,
    decider: &Decider,
) -> Result<Proposal, DecisionError> {
    // Who may retry is settled before 1Password is asked anything; then the user's state now,
    // read outside the write lock, tells whether the approval still stands.
    let seen = state
        .ledger
        .proposal(id)
        .await?
        .ok_or(DecisionError::NotFound)?;
    let unread = Act::Retry(Since::default());
    seen.may(decider, unread, &state.policy, Utc::now())
        .map_err(DecisionError::Refused)?;
    let state_now = match state.onepassword.get_user(&seen.target.id).await {
        Ok(user) => Some(user.state),
        // Gone from the account: nothing the approval was about is left.
        Err(OpError::NotFound) => {
            return Err(DecisionError::Refused(Refusal::UserChangedSinceApproval(
                seen.action,
            )))
        }
        Err(error) => return Err(DecisionError::Unverified(error)),
    };
    let mut tx = state.ledger.begin().await?;
    // Read the clock once the write lock is held: the decision commits at about this time.
    let now = Utc::now();
    let mut proposal = load(&mut tx, id).await?;
    let since = Since {
        user_changed_at: tx.last_change_of(&proposal.target.id, id).await?,
        state_now,
    };
    proposal
        .retry(decider, since, &state.policy, now)
        .map_err(DecisionError::Refused)?;
    // An old failure must not undo a later decision about the same user.
    if let Some(newer) = tx.newer_proposal_for(&proposal.target.id, id).await? {
        return Err(DecisionError::Refused(Refusal::Superseded(newer)));
    }
    let payload = json!({"slack_user_id": decider.slack_user_id, "name": decider.name});
    tx.append(
        Some(id),
        EventKind::ExecutionRetryRequested,
        &actor(decider),
        payload,
        now,
    )
    .await?;
    tx.enqueue(id, Job::Execute, now).await?;
    finish(state, tx, &proposal, now).await?;
    tracing::info!(proposal_id = %id, approver = %decider.slack_user_id, "retry requested");
    Ok(proposal)
}
