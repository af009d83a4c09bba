//! Carrying out an approved action in 1Password (DESIGN §6): read the user first, act only if
//! they are not already in the target state, then read back and record what 1Password shows.
//! A crash after the call but before the record is repaired by the read-first on resume.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::{backoff, JobResult};
use crate::domain::{Action, Outcome, Proposal, Status, UserState};
use crate::ledger::{ClaimedJob, EventKind, Job};
use crate::onepassword::OpError;
use crate::slack::card;
use crate::state::AppState;

/// Transient failures are retried this many times before the proposal is marked failed.
const MAX_ATTEMPTS: u32 = 6;

/// What the calls to 1Password produced.
struct Done {
    outcome: Outcome,
    state: UserState,
    calls: Vec<Value>,
}

fn state_name(state: UserState) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

async fn act(state: &AppState, proposal: &Proposal) -> Result<Done, (OpError, Vec<Value>)> {
    let op = &state.onepassword;
    let id = &proposal.target.id;
    let mut calls = vec![];
    let before = op.get_user(id).await.map_err(|e| (e, calls.clone()))?;
    calls.push(json!({"request": format!("GET users/{id}"), "state": state_name(before.state)}));
    if let Some(outcome) = Outcome::already(proposal.action, before.state) {
        return Ok(Done {
            outcome,
            state: before.state,
            calls,
        });
    }
    let (verb, answer) = match proposal.action {
        Action::Suspend => ("suspend", op.suspend(id).await),
        Action::Restore => ("reactivate", op.reactivate(id).await),
    };
    let answer = answer.map_err(|e| (e, calls.clone()))?;
    calls.push(
        json!({"request": format!("POST users/{id}:{verb}"), "state": state_name(answer.state)}),
    );
    let after = op.get_user(id).await.map_err(|e| (e, calls.clone()))?;
    calls.push(json!({"request": format!("GET users/{id}"), "state": state_name(after.state)}));
    let wanted = proposal.action.target_state();
    if after.state != wanted {
        let message = format!(
            "read-back shows {:?} after {verb}, expected {:?}",
            after.state, wanted
        );
        return Err((OpError::unreadable(message), calls));
    }
    Ok(Done {
        outcome: Outcome::done(proposal.action),
        state: after.state,
        calls,
    })
}

pub(super) async fn execute(
    state: &AppState,
    claimed: &ClaimedJob,
) -> Result<JobResult, sqlx::Error> {
    let id = claimed.proposal_id;
    let now = Utc::now();

    // Claim the proposal for execution: approved → executing, in one transaction. A proposal
    // already executing was claimed by an earlier run that died; resume it.
    let mut tx = state.ledger.begin().await?;
    let Some(mut proposal) = tx.proposal(id).await? else {
        return Ok(JobResult::Abandon("no such proposal".into()));
    };
    let resumed = match proposal.status {
        Status::Approved => {
            proposal
                .start_execution()
                .expect("an approved proposal can start");
            tx.save_proposal(&proposal, now).await?;
            tx.enqueue(id, Job::UpdateCard, now).await?;
            false
        }
        // Resumed after a worker died mid-run: its calls may have reached 1Password before it
        // could record them, so the event says so and the read-first below finds out.
        Status::Executing => true,
        other => {
            // Nothing to do (already executed, or never approved): never act twice.
            tx.complete_job(claimed.id, now).await?;
            tx.commit().await?;
            tracing::info!(proposal_id = %id, status = %other, "execute job found nothing to do");
            return Ok(JobResult::Done);
        }
    };
    let payload = json!({
        "attempt": proposal.execution.attempts, "action": proposal.action.as_str(), "resumed": resumed,
    });
    tx.append(
        Some(id),
        EventKind::ExecutionStarted,
        "system",
        payload,
        now,
    )
    .await?;
    tx.commit().await?;
    state.wake_worker();

    let result = act(state, &proposal).await;
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let mut proposal = tx.proposal(id).await?.expect("the proposal exists");
    if proposal.status != Status::Executing {
        // Another worker took this job over and recorded it first; never record twice.
        tx.complete_job(claimed.id, now).await?;
        tx.commit().await?;
        return Ok(JobResult::Done);
    }
    match result {
        Ok(done) => {
            proposal.finish_execution(done.outcome, done.state, now);
            let payload = json!({
                "outcome": done.outcome.as_str(), "state": state_name(done.state), "calls": done.calls,
            });
            tx.append(
                Some(id),
                EventKind::ExecutionSucceeded,
                "system",
                payload,
                now,
            )
            .await?;
            tracing::info!(proposal_id = %id, outcome = done.outcome.as_str(), "executed");
        }
        Err((error, calls)) => {
            let transient = matches!(error, OpError::Transient { .. });
            let payload = json!({"attempt": claimed.attempts, "error": error.to_string(), "transient": transient, "calls": calls});
            tx.append(
                Some(id),
                EventKind::ExecutionAttemptFailed,
                "system",
                payload,
                now,
            )
            .await?;
            if transient && claimed.attempts < MAX_ATTEMPTS {
                tx.commit().await?;
                let after = match &error {
                    OpError::Transient {
                        retry_after: Some(d),
                        ..
                    } => *d,
                    _ => backoff(claimed.attempts, Duration::from_secs(60)),
                };
                return Ok(JobResult::Retry {
                    after,
                    error: error.to_string(),
                });
            }
            proposal.fail_execution(error.to_string(), now);
            tx.append(
                Some(id),
                EventKind::ExecutionFailed,
                "system",
                json!({"error": error.to_string()}),
                now,
            )
            .await?;
            tracing::error!(proposal_id = %id, %error, "execution failed");
        }
    }
    state.metrics.executed(
        proposal.action.as_str(),
        proposal.status.as_str(),
        proposal.approved_at(),
    );
    tx.save_proposal(&proposal, now).await?;
    tx.enqueue(id, Job::UpdateCard, now).await?;
    tx.enqueue(
        id,
        Job::ThreadReply {
            text: card::outcome_reply(&proposal),
        },
        now,
    )
    .await?;
    tx.enqueue_callback(&proposal, now).await?;
    tx.complete_job(claimed.id, now).await?;
    tx.commit().await?;
    state.wake_worker();
    Ok(JobResult::Done)
}
