//! Background work: one loop per outbox lane, and the sweeper that expires proposals. Loops
//! wake on commit (the state's `Notify`) and poll as a backstop, so nothing waits on a timer
//! when there is work. Each job runs in its own task: a job that panics is rescheduled and
//! its lane goes on; a lane that stops is restarted, and `/readyz` says so meanwhile.

mod attempt;
mod audit_events;
mod callbacks;
mod cards;
mod checkpoint;
mod drift;
mod executor;
mod homes;
mod incident_cards;
mod sweeper;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::state::AppState;
use crate::ledger::{ClaimedJob, Lane};

const POLL: Duration = Duration::from_millis(500);
/// How long a lane that stopped waits before it is started again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

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
        let mut handles: Vec<_> = Lane::ALL
            .into_iter()
            .map(|lane| tokio::spawn(supervise(state.clone(), lane, shutdown.clone())))
            .collect();
        handles.push(tokio::spawn(sweeper::run(state.clone(), shutdown.clone())));
        handles.push(tokio::spawn(drift::run(state.clone(), shutdown.clone())));
        handles.push(tokio::spawn(audit_events::run(
            state.clone(),
            shutdown.clone(),
        )));
        handles.push(tokio::spawn(homes::run(state.clone(), shutdown.clone())));
        handles.push(tokio::spawn(checkpoint::run(state, shutdown.clone())));
        handles.push(tokio::spawn(give_back_memory(shutdown.clone())));
        Self { shutdown, handles }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// Hands memory a burst freed back to the system every few seconds (`memory::give_back`).
async fn give_back_memory(shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::memory::GIVE_BACK_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        // Off the async threads: trimming walks the heap.
        let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
    }
}

/// Runs a lane, and starts it again if it ever stops other than for shutdown.
async fn supervise(state: AppState, lane: Lane, shutdown: CancellationToken) {
    loop {
        state.lanes.set_running(lane, true);
        let ended = tokio::spawn(run_lane(state.clone(), lane, shutdown.clone())).await;
        state.lanes.set_running(lane, false);
        if shutdown.is_cancelled() {
            return;
        }
        match ended {
            Ok(()) => tracing::error!(lane = lane.as_str(), "lane stopped; starting it again"),
            Err(error) => {
                tracing::error!(lane = lane.as_str(), %error, "lane panicked; starting it again")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_AFTER) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// How many jobs of `lane` may run at once now: the 1Password lane runs up to
/// `OP_CONCURRENCY` actions (never two for one user: the claim sees to that); Slack and
/// callbacks run one at a time, which keeps each proposal's messages in order and Slack paced.
fn lane_limit(state: &AppState, lane: Lane) -> usize {
    match lane {
        Lane::OnePassword => state.op_concurrency.limit(),
        Lane::Slack | Lane::Callback => 1,
    }
}

async fn run_lane(state: AppState, lane: Lane, shutdown: CancellationToken) {
    let mut running = tokio::task::JoinSet::new();
    while !shutdown.is_cancelled() {
        // Register for a wake-up before looking, so a commit in between is not missed.
        let notified = state.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        while running.try_join_next().is_some() {}
        let full = running.len() >= lane_limit(&state, lane);
        if !full {
            match state
                .ledger
                .claim_job(lane, lease(&state), Utc::now())
                .await
            {
                Ok(Some(job)) => {
                    running.spawn(run_job(state.clone(), job));
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, lane = lane.as_str(), "could not claim a job")
                }
            }
        }
        tokio::select! {
            _ = notified => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    // Jobs already running finish and record what they did.
    while running.join_next().await.is_some() {}
}

fn lease(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.timing.outbox_lease).unwrap_or(chrono::Duration::seconds(30))
}

/// `now + after`, with `after` capped: no header from anyone can push a job past the cap or
/// overflow the clock.
pub(crate) fn after_capped(now: DateTime<Utc>, after: Duration, cap: Duration) -> DateTime<Utc> {
    let after = chrono::Duration::from_std(after.min(cap)).unwrap_or(chrono::Duration::zero());
    now.checked_add_signed(after).unwrap_or(now)
}

/// Renews the job's lease while it runs, so a slow call never lets a second worker take it,
/// while a worker that dies stops renewing and its job resumes after one lease. Once the
/// lease has passed to another worker, renewing stops: the holder owns the job.
async fn keep_leased(state: &AppState, job: &ClaimedJob) {
    let every = state.timing.outbox_lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let until = after_capped(Utc::now(), state.timing.outbox_lease, Duration::MAX);
        match state.ledger.renew_lease(job, until).await {
            Ok(true) => job.renewed(until),
            Ok(false) => {
                tracing::warn!(job_id = job.id, "the job's lease passed to another worker");
                return std::future::pending().await;
            }
            Err(error) => tracing::warn!(%error, job_id = job.id, "could not renew a job's lease"),
        }
    }
}

async fn dispatch(state: AppState, claimed: ClaimedJob) -> Result<JobResult, sqlx::Error> {
    match claimed.job.lane() {
        Lane::OnePassword => executor::execute(&state, &claimed).await,
        Lane::Slack => cards::run(&state, &claimed).await,
        Lane::Callback => callbacks::deliver(&state, &claimed).await,
    }
}

async fn run_job(state: AppState, claimed: ClaimedJob) {
    let state = &state;
    let id = claimed.proposal_id;
    // Every log line of the job carries its proposal id.
    let span = tracing::info_span!("job", proposal_id = %id, job_id = claimed.id);
    let work = dispatch(state.clone(), claimed.clone()).instrument(span);
    let result = tokio::select! {
        result = contained(work, claimed.attempts) => result,
        _ = keep_leased(state, &claimed) => unreachable!("renewal never ends"),
    };
    let result = match result {
        Contained::Ended(result) => result,
        Contained::Panicked(retry) => {
            state.lanes.job_panicked();
            tracing::error!(proposal_id = %id, job = ?claimed.job, "job panicked; it will be tried again");
            Ok(retry)
        }
    };
    let now = Utc::now();
    let recorded = match result {
        Ok(JobResult::Done) => Ok(true),
        Ok(JobResult::Retry { after, error }) => {
            tracing::warn!(proposal_id = %id, job = ?claimed.job, attempt = claimed.attempts, %error, "job will be retried");
            let run_after = after_capped(now, after, state.timing.retry_after_cap);
            state
                .ledger
                .reschedule_job(&claimed, run_after, &error)
                .await
        }
        Ok(JobResult::Abandon(error)) => {
            tracing::error!(proposal_id = %id, job = ?claimed.job, %error, "job abandoned");
            state.ledger.abandon_job(&claimed, &error, now).await
        }
        Err(error) => {
            // The ledger failed; the lease runs out and the job is tried again.
            tracing::error!(proposal_id = %id, job = ?claimed.job, %error, "job could not be recorded");
            Ok(true)
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(proposal_id = %id, job_id = claimed.id, "the job's lease had passed to another worker; left it to the holder")
        }
        Err(error) => tracing::error!(proposal_id = %id, %error, "could not record a job's result"),
    }
}

/// How a job's task ended.
enum Contained {
    Ended(Result<JobResult, sqlx::Error>),
    /// The task panicked: the job is to be tried again later, like a transient failure.
    Panicked(JobResult),
}

/// Runs a job in its own task, so a panic ends the job and not the lane.
async fn contained<F>(work: F, attempts: u32) -> Contained
where
    F: std::future::Future<Output = Result<JobResult, sqlx::Error>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => Contained::Ended(result),
        Err(panic) => Contained::Panicked(JobResult::Retry {
            after: backoff(attempts, Duration::from_secs(300)),
            error: format!("the job panicked: {panic}"),
        }),
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at `cap`.
pub(crate) fn backoff(attempt: u32, cap: Duration) -> Duration {
    use rand::Rng;
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(cap);
    let jitter = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 4);
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_that_panics_is_contained_and_tried_again_later() {
        let ended = contained(async { panic!("an answer nobody expected") }, 1).await;

        let Contained::Panicked(JobResult::Retry { after, error }) = ended else {
            panic!("the panic escaped containment");
        };
        assert!(error.contains("panicked"), "{error}");
        assert!(after >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_job_that_ends_is_passed_through() {
        let ended = contained(async { Ok(JobResult::Done) }, 1).await;

        assert!(matches!(ended, Contained::Ended(Ok(JobResult::Done))));
    }

    #[test]
    fn a_huge_retry_after_is_capped_instead_of_overflowing_the_clock() {
        let now = Utc::now();
        let cap = Duration::from_secs(300);

        let at = after_capped(now, Duration::from_secs(9_999_999_999_999), cap);

        assert_eq!(at, now + chrono::Duration::seconds(300));
    }

    #[test]
    fn an_after_beyond_every_representable_time_saturates_at_now() {
        let now = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(1);

        let at = after_capped(now, Duration::from_secs(60), Duration::MAX);

        assert_eq!(at, now);
    }
}
