//! Background work: one loop per outbox lane, and the sweeper that expires proposals. Loops
//! wake on commit (the state's `Notify`) and poll as a backstop, so nothing waits on a timer
//! when there is work.

mod cards;
mod executor;
mod sweeper;

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ledger::{ClaimedJob, Lane};
use crate::state::AppState;

pub use sweeper::sweep_once;

/// Longer than the slowest call a job makes (HTTP timeouts are 20 s), so a live job is never
/// claimed twice; a dead worker's job is taken again after it.
const LEASE: chrono::Duration = chrono::Duration::seconds(120);
const POLL: Duration = Duration::from_millis(500);

/// How a job ended, for the loop to record.
pub(crate) enum JobResult {
    /// The job recorded its own completion in its transaction.
    Done,
    /// Try again later.
    Retry { after: Duration, error: String },
    /// Give up; the reason is kept on the job.
    Abandon(String),
}

pub struct Workers {
    shutdown: CancellationToken,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn start(state: AppState) -> Self {
        let shutdown = CancellationToken::default();
        let handles = vec![
            tokio::spawn(run_lane(state.clone(), Lane::OnePassword, shutdown.clone())),
            tokio::spawn(run_lane(state.clone(), Lane::Slack, shutdown.clone())),
            tokio::spawn(sweeper::run(state, shutdown.clone())),
        ];
        Self { shutdown, handles }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

async fn run_lane(state: AppState, lane: Lane, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        // Register for a wake-up before looking, so a commit in between is not missed.
        let notified = state.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match state.ledger.claim_job(lane, LEASE, Utc::now()).await {
            Ok(Some(job)) => {
                run_job(&state, job).await;
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, ?lane, "could not claim a job"),
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

async fn run_job(state: &AppState, claimed: ClaimedJob) {
    let id = claimed.proposal_id;
    let result = match claimed.job.lane() {
        Lane::OnePassword => executor::execute(state, &claimed).await,
        Lane::Slack => cards::run(state, &claimed).await,
    };
    let recorded = match result {
        Ok(JobResult::Done) => Ok(()),
        Ok(JobResult::Retry { after, error }) => {
            tracing::warn!(proposal_id = %id, job = ?claimed.job, attempt = claimed.attempts, %error, "job will be retried");
            let after = chrono::Duration::from_std(after).unwrap_or(LEASE);
            state
                .ledger
                .reschedule_job(claimed.id, Utc::now() + after, &error)
                .await
        }
        Ok(JobResult::Abandon(error)) => {
            tracing::error!(proposal_id = %id, job = ?claimed.job, %error, "job abandoned");
            state
                .ledger
                .abandon_job(claimed.id, &error, Utc::now())
                .await
        }
        Err(error) => {
            // The ledger failed; the lease runs out and the job is tried again.
            tracing::error!(proposal_id = %id, job = ?claimed.job, %error, "job could not be recorded");
            Ok(())
        }
    };
    if let Err(error) = recorded {
        tracing::error!(proposal_id = %id, %error, "could not record a job's result");
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at `cap`.
pub(crate) fn backoff(attempt: u32, cap: Duration) -> Duration {
    use rand::Rng;
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(cap);
    let jitter = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 4);
    base + Duration::from_millis(jitter)
}
