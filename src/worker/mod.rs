//! Background work: one loop per outbox lane, and the sweeper that expires proposals. Loops
//! wake on commit (the state's `Notify`) and poll as a backstop, so nothing waits on a timer
//! when there is work.

mod callbacks;
mod cards;
mod checkpoint;
mod executor;
mod sweeper;

use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ledger::{ClaimedJob, Lane};
use crate::state::AppState;

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
            tokio::spawn(run_lane(state.clone(), Lane::Callback, shutdown.clone())),
            tokio::spawn(sweeper::run(state.clone(), shutdown.clone())),
            tokio::spawn(checkpoint::run(state, shutdown.clone())),
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
        match state
            .ledger
            .claim_job(lane, lease(&state), Utc::now())
            .await
        {
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

fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.timing.outbox_lease).unwrap_or(chrono::Duration::seconds(30))
}

/// Renews the job's lease while it runs, so a slow call never lets a second worker take it,
/// while a worker that dies stops renewing and its job resumes after one lease.
async fn keep_leased(state: &AppState, job_id: i64) {
    let every = state.timing.outbox_lease / 3;
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = state
            .ledger
            .renew_lease(job_id, Utc::now() + lease(state))
            .await
        {
            tracing::warn!(%error, job_id, "could not renew a job's lease");
        }
    }
}

async fn run_job(state: &AppState, claimed: ClaimedJob) {
    let id = claimed.proposal_id;
    let work = async {
        match claimed.job.lane() {
            Lane::OnePassword => executor::execute(state, &claimed).await,
            Lane::Slack => cards::run(state, &claimed).await,
            Lane::Callback => callbacks::deliver(state, &claimed).await,
        }
    };
    // Every log line of the job carries its proposal id.
    let span = tracing::info_span!("job", proposal_id = %id, job_id = claimed.id);
    let result = tokio::select! {
        result = work.instrument(span) => result,
        _ = keep_leased(state, claimed.id) => unreachable!("renewal never ends"),
    };
    let recorded = match result {
        Ok(JobResult::Done) => Ok(()),
        Ok(JobResult::Retry { after, error }) => {
            tracing::warn!(proposal_id = %id, job = ?claimed.job, attempt = claimed.attempts, %error, "job will be retried");
            let after = chrono::Duration::from_std(after).unwrap_or(lease(state));
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
