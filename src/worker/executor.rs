//! Carrying out an approved action in 1Password (DESIGN §6). Before every attempt (first,
//! rescheduled or resumed) the executor checks, under the write lock, that no newer decision
//! about the same user was approved; if one was, this proposal ends `superseded` without a
//! call. The attempt itself (`attempt.rs`) reads first, acts if needed and reads back; its
//! outcome is recorded only by the worker still holding the job's lease, and a stale worker's
//! calls are recorded all the same.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::attempt::{self, Attempt, Done, History};
use super::{backoff, JobResult};
use crate::app::state::AppState;
use crate::app::supersession;
use crate::domain::{Announcement, Proposal, Status};
use crate::ledger::{ClaimedJob, EventKind, Job, Tx};
use crate::onepassword::OpError;

/// Transient failures are retried this many times before the proposal is marked failed.
const MAX_ATTEMPTS: u32 = 6;

const INTERRUPTED: &str = "the previous attempt ended without a record (its worker stopped or lost its lease), so its calls may have reached 1Password unrecorded; this attempt reads the user first";

fn calls_json(calls: &[attempt::Call]) -> Value {
    serde_json::to_value(calls).unwrap_or(Value::Null)
}

/// What the executor decided under the write lock before calling 1Password.
enum Begun {
    /// Make the calls, as attempt `number`, knowing what earlier attempts did.
    Attempt {
        proposal: Box<Proposal>,
        number: u32,
        history: History,
    },
    /// Nothing to call: the job is recorded as done, or is no longer this worker's.
    Finished,
}

pub(super) async fn execute(
    state: &AppState,
    claimed: &ClaimedJob,
    claim: Option<Tx>,
) -> Result<JobResult, sqlx::Error> {
    match begin(state, claimed, claim).await? {
        Begun::Finished => Ok(JobResult::Done),
        Begun::Attempt {
            proposal,
            number,
            history,
        } => {
            let still_ours = || claimed.still_leased();
            let attempt = attempt::run(&state.onepassword, &proposal, &history, still_ours).await;
            match &attempt.ended {
                Err(error) if error.is_throttled() => state.op_concurrency.throttled(),
                Ok(_) => state.op_concurrency.succeeded(),
                Err(_) => {}
            }
            record(state, claimed, number, &history, attempt).await
        }
    }
}

/// Decides, in the claim's own transaction when there is one (`claim`), whether to call
/// 1Password, and records `execution.started` if so: the claim and the start commit together.
async fn begin(
    state: &AppState,
    claimed: &ClaimedJob,
    claim: Option<Tx>,
) -> Result<Begun, sqlx::Error> {
    let id = claimed.proposal_id;
    let now = Utc::now();
    let mut tx = match claim {
        Some(tx) => tx,
        None => {
            let mut tx = state.ledger.begin().await?;
            // A claim whose lease passed while it waited for the write lock writes nothing:
            // the job is another worker's now, and an attempt this one never makes must not
            // be counted.
            if !tx.holds_lease(claimed).await? {
                tracing::warn!(proposal_id = %id, "the execute job's lease passed to another worker");
                return Ok(Begun::Finished);
            }
            tx
        }
    };
    let Some(mut proposal) = tx.proposal(id).await? else {
        tx.complete_job(claimed, now).await?;
        tx.commit().await?;
        return Ok(Begun::Finished);
    };
    if !matches!(proposal.status, Status::Approved | Status::Executing) {
        // Already executed, superseded, or never approved: never act twice.
        tx.complete_job(claimed, now).await?;
        tx.commit().await?;
        tracing::info!(proposal_id = %id, status = %proposal.status, "execute job found nothing to do");
        return Ok(Begun::Finished);
    }
    if let Some(newer) = tx.newer_decision_than(&proposal).await? {
        let superseded = supersession::record(&mut tx, proposal, newer, now).await?;
        metrics(state, &superseded);
        tx.complete_job(claimed, now).await?;
        tx.commit().await?;
        state.wake_worker();
        return Ok(Begun::Finished);
    }
    let history = History::of(&tx.execution_events(id).await?);
    let was_approved = proposal.status == Status::Approved;
    let number = proposal
        .begin_attempt()
        .expect("an approved or executing proposal can attempt");
    tx.save_proposal(&proposal, now).await?;
    if was_approved {
        tx.enqueue(id, Job::UpdateCard, now).await?;
    }
    let mut payload = json!({
        "attempt": number, "action": proposal.action.as_str(), "resumed": history.interrupted,
    });
    if history.interrupted {
        payload["interrupted"] = json!(INTERRUPTED);
    }
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
    Ok(Begun::Attempt {
        proposal: Box::new(proposal),
        number,
        history,
    })
}

async fn record(
    state: &AppState,
    claimed: &ClaimedJob,
    number: u32,
    history: &History,
    attempt: Attempt,
) -> Result<JobResult, sqlx::Error> {
    let id = claimed.proposal_id;
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let current = tx.proposal(id).await?;
    let holder = tx.holds_lease(claimed).await?;
    let Some(mut proposal) = current.filter(|p| holder && p.status == Status::Executing) else {
        // The lease passed to another worker, which owns the outcome; every call this one
        // made is still on the record.
        record_stale(&mut tx, claimed, number, &attempt, now).await?;
        tx.commit().await?;
        tracing::warn!(proposal_id = %id, attempt = number, "lost the job's lease; recorded the calls, left the outcome to the holder");
        return Ok(JobResult::Done);
    };
    let ended = match &attempt.ended {
        Ok(done) => Ok(*done),
        Err(error) => {
            let transient = matches!(error, OpError::Transient { .. });
            let payload = json!({
                "attempt": number, "error": error.to_string(), "transient": transient,
                "calls": calls_json(&attempt.calls),
            });
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
                return Ok(JobResult::Retry {
                    after: retry_after(error, claimed.attempts),
                    error: error.to_string(),
                });
            }
            // Out of attempts: 1Password's own answer, if it said done, is the outcome.
            attempt::reported_done(&proposal, history, &attempt).ok_or_else(|| error.clone())
        }
    };
    conclude(&mut tx, &mut proposal, number, ended, &attempt.calls, now).await?;
    metrics(state, &proposal);
    tx.save_proposal(&proposal, now).await?;
    tx.enqueue(id, Job::UpdateCard, now).await?;
    tx.enqueue(
        id,
        Job::Announce {
            fact: outcome_fact(&proposal),
        },
        now,
    )
    .await?;
    tx.enqueue_callback(&proposal, now).await?;
    tx.complete_job(claimed, now).await?;
    tx.commit().await?;
    state.wake_worker();
    Ok(JobResult::Done)
}

/// Writes how the execution ended: executed with its outcome, or failed with the error.
async fn conclude(
    tx: &mut Tx,
    proposal: &mut Proposal,
    number: u32,
    ended: Result<Done, OpError>,
    calls: &[attempt::Call],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let id = proposal.id;
    match ended {
        Ok(done) => {
            proposal.finish_execution(done.outcome, done.state, now);
            // What countersign's own action left: the drift sweep compares against it.
            tx.record_executed_state(proposal, now).await?;
            let payload = json!({
                "attempt": number, "outcome": done.outcome.as_str(),
                "state": done.state.as_str(), "calls": calls_json(calls),
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
        Err(error) => {
            let refused_with = error.as_vendor_error();
            let payload = json!({"attempt": number, "error": error.to_string(), "refused_with": refused_with});
            proposal.fail_execution(error.to_string(), refused_with, now);
            tx.append(Some(id), EventKind::ExecutionFailed, "system", payload, now)
                .await?;
            tracing::error!(proposal_id = %id, %error, "execution failed");
        }
    }
    Ok(())
}

/// A worker whose lease passed to another records what it did, and nothing else.
async fn record_stale(
    tx: &mut Tx,
    claimed: &ClaimedJob,
    number: u32,
    attempt: &Attempt,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let ended = match &attempt.ended {
        Ok(done) => format!("its calls ended with 1Password showing {:?}", done.state),
        Err(error) => error.to_string(),
    };
    let payload = json!({
        "attempt": number, "stale": true, "transient": false,
        "error": format!("this worker's lease on the job had passed to another worker before it could record attempt {number}; {ended}"),
        "calls": calls_json(&attempt.calls),
    });
    tx.append(
        Some(claimed.proposal_id),
        EventKind::ExecutionAttemptFailed,
        "system",
        payload,
        now,
    )
    .await?;
    Ok(())
}

/// What the card's thread is told about how the execution ended.
fn outcome_fact(proposal: &Proposal) -> Announcement {
    match (proposal.status, proposal.execution.outcome) {
        (Status::Executed, Some(outcome)) => Announcement::Executed {
            outcome,
            state: proposal.target.state,
        },
        _ => Announcement::ExecutionFailed {
            error: proposal
                .execution
                .last_error
                .clone()
                .unwrap_or_else(|| "unknown error".into()),
        },
    }
}

fn retry_after(error: &OpError, attempts: u32) -> Duration {
    match error {
        OpError::Transient {
            retry_after: Some(after),
            ..
        } => *after,
        _ => backoff(attempts, Duration::from_secs(60)),
    }
}

fn metrics(state: &AppState, proposal: &Proposal) {
    state.metrics.executed(
        proposal.action.as_str(),
        proposal.status.as_str(),
        proposal.approved_at(),
    );
}
