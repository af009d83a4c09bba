//! Background work: one loop per outbox lane, and the sweeper that expires proposals. A lane
//! wakes when a commit files jobs for it (its bell in the ledger) and polls as a backstop, so
//! nothing waits on a timer when there is work. Each job runs in its own task: a job that
//! panics is rescheduled and its lane goes on; a lane that stops is restarted, and `/readyz`
//! says so meanwhile.

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
use crate::ledger::{ClaimedJob, Lane, Tx};

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

/// A job the lane claimed, ready to run.
struct Claimed {
    job: ClaimedJob,
    /// A 1Password action's claim transaction, still open (SQLite): the executor records
    /// `execution.started` in it, so claiming and starting an action is one commit.
    open: Option<Tx>,
}

impl Claimed {
    fn run(job: ClaimedJob) -> Self {
        Self { job, open: None }
    }
}

/// How a lane looks for work.
#[derive(Clone, Copy)]
enum Look {
    /// Claim at once: its bell rang (jobs were filed for it).
    Claim,
    /// Ask a reader whether anything is due first (at start, on a poll, or when a job
    /// ended): finding nothing then costs no write transaction.
    AskFirst,
}

async fn run_lane(state: AppState, lane: Lane, shutdown: CancellationToken) {
    let mut running = tokio::task::JoinSet::new();
    // Jobs claimed by the transactions that completed the ones before them.
    let mut handed: Vec<ClaimedJob> = vec![];
    let mut look = Look::AskFirst;
    while !shutdown.is_cancelled() {
        // Register for the bell before looking, so jobs filed in between are not missed.
        let bell = state.ledger.bell(lane).notified();
        tokio::pin!(bell);
        bell.as_mut().enable();
        while let Some(ended) = running.try_join_next() {
            handed.extend(ended.ok().flatten());
        }
        if running.len() < lane_limit(&state, lane) {
            let next = match handed.pop() {
                Some(job) => Ok(Some(Claimed::run(job))),
                None => claim(&state, lane, look).await,
            };
            match next {
                Ok(Some(claimed)) => {
                    running.spawn(run_job(state.clone(), claimed));
                    look = Look::AskFirst;
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, lane = lane.as_str(), "could not claim a job")
                }
            }
        }
        look = tokio::select! {
            _ = bell => Look::Claim,
            Some(ended) = running.join_next(), if !running.is_empty() => {
                handed.extend(ended.ok().flatten());
                Look::AskFirst
            }
            _ = tokio::time::sleep(POLL) => Look::AskFirst,
            _ = shutdown.cancelled() => Look::AskFirst,
        };
    }
    // Jobs already running finish and record what they did; jobs handed on and not begun
    // are given back, due at once for whoever runs next.
    while let Some(ended) = running.join_next().await {
        handed.extend(ended.ok().flatten());
    }
    for job in handed {
        if let Err(error) = state.ledger.release_job(&job).await {
            tracing::warn!(%error, job_id = job.id, "could not give back a job; its lease will run out");
        }
    }
}

/// Claims the lane's next job. A lane that runs one job at a time has each job's completion
/// claim the next ([`ClaimedJob::handing_on`]); the 1Password lane's claim leaves its
/// transaction open for the executor to go on in, where the ledger finds that cheaper.
async fn claim(state: &AppState, lane: Lane, look: Look) -> Result<Option<Claimed>, sqlx::Error> {
    let now = Utc::now();
    if matches!(look, Look::AskFirst) && !state.ledger.has_due_job(lane, now).await? {
        return Ok(None);
    }
    let lease = lease(state);
    match lane {
        Lane::OnePassword => Ok(state
            .ledger
            .claim_job_to_go_on(lane, lease, now)
            .await?
            .map(|(job, open)| Claimed { job, open })),
        Lane::Slack | Lane::Callback => Ok(state
            .ledger
            .claim_job(lane, lease, now)
            .await?
            .map(|job| Claimed::run(job.handing_on(lease)))),
    }
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

async fn dispatch(
    state: AppState,
    claimed: ClaimedJob,
    tx: Option<Tx>,
) -> Result<JobResult, sqlx::Error> {
    match claimed.job.lane() {
        Lane::OnePassword => executor::execute(&state, &claimed, tx).await,
        Lane::Slack => cards::run(&state, &claimed).await,
        Lane::Callback => callbacks::deliver(&state, &claimed).await,
    }
}

/// Runs a claimed job and records how it ended; returns the lane's next job if the job's
/// completion claimed it.
async fn run_job(state: AppState, claimed: Claimed) -> Option<ClaimedJob> {
    let state = &state;
    let Claimed {
        job: claimed,
        open: tx,
    } = claimed;
    if tx.is_none() && !claimed.still_leased() {
        // Handed on, but its lease ran out before the job before it ended: it may be another
        // worker's by now.
        tracing::warn!(
            job_id = claimed.id,
            "a job handed on was not begun within its lease"
        );
        return None;
    }
    let id = claimed.proposal_id;
    let claimed_with_start = tx.is_some();
    // Every log line of the job carries its proposal id.
    let span = tracing::info_span!("job", proposal_id = %id, job_id = claimed.id);
    let work = dispatch(state.clone(), claimed.clone(), tx).instrument(span);
    let result = tokio::select! {
        result = contained(work, claimed.attempts) => result,
        _ = keep_leased(state, &claimed) => unreachable!("renewal never ends"),
    };
    let failed = matches!(result, Contained::Panicked(_) | Contained::Ended(Err(_)));
    if claimed_with_start && failed {
        // The claim shared its transaction with the start, which may have rolled back with
        // it: the job is held for a lease all the same, so a job that fails is tried again
        // after one (as any claimed job is), not at once and over and over.
        let until = after_capped(Utc::now(), state.timing.outbox_lease, Duration::MAX);
        if let Err(error) = state.ledger.hold_job(&claimed, until).await {
            tracing::warn!(%error, job_id = claimed.id, "could not hold a failed job");
        }
    }
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
    claimed.handed_on()
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
