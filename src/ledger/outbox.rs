//! The outbox: work caused by a ledger event, written in that event's transaction and done by
//! the worker. A job is claimed with a lease (a conditional UPDATE, SQLite's stand-in for
//! `SKIP LOCKED`), so a crashed worker's job is picked up again once its lease runs out. Every
//! claim carries a fresh token: only the holder of the latest claim may renew, complete or
//! reschedule the job, so a worker that stalled past its lease cannot finish another's work.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::engine::values_list;
use super::{postgres, storable, timestamp, Engine, Ledger, Open, Result, Tx};
use crate::domain::{Announcement, Proposal, ProposalId, Requester, Viewer};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Post the approval card, once.
    PostCard,
    /// Re-render the card from the proposal's current state.
    UpdateCard,
    /// A reply in the card's thread, worded by an older release (rows written before
    /// announcements were facts).
    ThreadReply { text: String },
    /// A fact to tell in the card's thread; `slack/` words it.
    Announce { fact: Announcement },
    /// A fact for the security team, told in the audit channel (the approvals channel when
    /// there is none); `slack/` words it.
    Audit { fact: Announcement },
    /// Bring a pending proposal to more people: a post in channel `to` mentioning the user
    /// groups `mention`, or (`to` a user id) a direct message; `slack/` words it.
    Escalate {
        to: String,
        #[serde(default)]
        mention: Vec<String>,
    },
    /// Carry out the approved action in 1Password.
    Execute,
    /// Tell a requester's callback_url what happened; `body` is fixed when the event happens,
    /// as that requester sees the proposal. `to` is the requester's token id; none means the
    /// first requester (and every job written before there could be others).
    Callback {
        event: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
}

/// A callback's body holds its recipient's callback URL, a secret: `Debug` leaves it out.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::PostCard => f.write_str("PostCard"),
            Job::UpdateCard => f.write_str("UpdateCard"),
            Job::ThreadReply { text } => f.debug_struct("ThreadReply").field("text", text).finish(),
            Job::Announce { fact } => f.debug_struct("Announce").field("fact", fact).finish(),
            Job::Audit { fact } => f.debug_struct("Audit").field("fact", fact).finish(),
            Job::Execute => f.write_str("Execute"),
            Job::Escalate { to, mention } => f
                .debug_struct("Escalate")
                .field("to", to)
                .field("mention", mention)
                .finish(),
            Job::Callback { event, body, to } => f
                .debug_struct("Callback")
                .field("event", event)
                .field("to", to)
                .field("body", &format_args!("[{} bytes, redacted]", body.len()))
                .finish(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Slack,
    OnePassword,
    Callback,
}

impl Job {
    pub fn lane(&self) -> Lane {
        match self {
            Job::Execute => Lane::OnePassword,
            Job::Callback { .. } => Lane::Callback,
            _ => Lane::Slack,
        }
    }

    /// The order jobs of a lane run in when several are due: new cards first, because nobody
    /// can decide without one, then card updates, then the rest.
    fn priority(&self) -> i64 {
        match self {
            Job::PostCard => 0,
            Job::UpdateCard => 1,
            _ => 2,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Job::PostCard => "post_card",
            Job::UpdateCard => "update_card",
            Job::ThreadReply { .. } | Job::Announce { .. } => "thread_reply",
            Job::Audit { .. } => "audit",
            Job::Escalate { .. } => "escalate",
            Job::Execute => "execute",
            Job::Callback { .. } => "callback",
        }
    }
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::OnePassword, Lane::Slack, Lane::Callback];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Slack => "slack",
            Lane::OnePassword => "onepassword",
            Lane::Callback => "callback",
        }
    }

    pub fn parse(name: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|lane| lane.as_str() == name)
    }
}

#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub proposal_id: ProposalId,
    pub job: Job,
    /// Including this one.
    pub attempts: u32,
    /// This claim's fencing token.
    pub lease: String,
    /// Until when (Unix milliseconds) the lease is known to be this claim's: moved on by each
    /// renewal. A worker past it must not start a call it cannot record as the holder.
    pub valid_until: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Set for a lane that runs one job at a time: the transaction that completes this job
    /// also claims the lane's next one and leaves it here once it commits.
    hand_on: Option<std::sync::Arc<HandOn>>,
}

/// The lane's next job, claimed by the transaction that completed the one before it, so a
/// lane that runs one job at a time pays one transaction a job instead of two.
#[derive(Debug)]
pub(super) struct HandOn {
    lease: Duration,
    next: std::sync::Mutex<Option<ClaimedJob>>,
}

impl ClaimedJob {
    /// Whether the lease is still known to be this claim's.
    pub fn still_leased(&self) -> bool {
        let until = self.valid_until.load(std::sync::atomic::Ordering::SeqCst);
        Utc::now().timestamp_millis() < until
    }

    /// A renewal extended the lease to `until`.
    pub fn renewed(&self, until: DateTime<Utc>) {
        self.valid_until.store(
            until.timestamp_millis(),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Has the transaction that completes this job claim the lane's next one, for `lease`.
    pub fn handing_on(mut self, lease: Duration) -> Self {
        self.hand_on = Some(std::sync::Arc::new(HandOn {
            lease,
            next: std::sync::Mutex::default(),
        }));
        self
    }

    /// The lane's next job, if this job's completion claimed one and committed.
    pub fn handed_on(&self) -> Option<ClaimedJob> {
        let hand_on = self.hand_on.as_ref()?;
        let mut next = hand_on.next.lock().unwrap_or_else(|e| e.into_inner());
        next.take()
    }
}

fn lease_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Tx {
    /// Files a job, in this transaction's order: the jobs are inserted together, with one
    /// statement, when the transaction commits.
    pub async fn enqueue(
        &mut self,
        proposal_id: ProposalId,
        job: Job,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.jobs.push((proposal_id, job, now));
        Ok(())
    }

    /// Inserts the jobs filed so far, as one multi-row `INSERT`.
    pub(super) async fn insert_jobs(&mut self) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        let jobs = std::mem::take(&mut self.jobs);
        let sql = format!(
            "INSERT INTO outbox (proposal_id, lane, kind, priority, payload, created_at, run_after)
             VALUES {}",
            values_list(jobs.len(), 7)
        );
        let mut insert = self.write(sql);
        for (proposal_id, job, now) in &jobs {
            insert = insert
                .bind(proposal_id.to_string())
                .bind(job.lane().as_str())
                .bind(job.name())
                .bind(job.priority())
                .bind(serde_json::to_string(job).expect("a job always serializes"))
                .bind(timestamp(*now))
                .bind(timestamp(*now));
        }
        insert.run().await
    }

    /// Marks a claimed job done, in the transaction that records its result.
    /// Enqueues the callback a proposal's new status calls for, if it has a callback_url.
    pub async fn enqueue_callback(
        &mut self,
        proposal: &Proposal,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(event) = proposal.callback_event() else {
            return Ok(());
        };
        for (requester, _) in proposal.callbacks() {
            let Requester::Integration { token_id, .. } = requester else {
                continue;
            };
            let viewer = Viewer {
                token_id,
                reads_all: false,
            };
            let seen = proposal.seen_by(viewer);
            let body = serde_json::json!({"event": event.as_str(), "proposal": seen}).to_string();
            let to = (!proposal.requester.same_as(requester)).then(|| token_id.clone());
            let job = Job::Callback {
                event: event.as_str().to_owned(),
                body,
                to,
            };
            self.enqueue(proposal.id, job, now).await?;
        }
        Ok(())
    }

    /// Marks a claimed job done, unless the claim is no longer the job's latest (then
    /// nothing changes: the job is another worker's).
    /// A job claimed [`ClaimedJob::handing_on`] also has the lane's next job claimed here,
    /// handed over when this transaction commits.
    pub async fn complete_job(&mut self, job: &ClaimedJob, now: DateTime<Utc>) -> Result<()> {
        self.write(
            "UPDATE outbox SET done_at = $1, leased_until = NULL
             WHERE id = $2 AND lease_token = $3 AND done_at IS NULL",
        )
        .bind(timestamp(now))
        .bind(job.id)
        .bind(job.lease.clone())
        .run()
        .await?;
        // Not on PostgreSQL: there the claim would run under the ledger's lock, and its
        // search hold up every decision (see `Ledger::claim_job_to_go_on`).
        let hand_on = job
            .hand_on
            .as_ref()
            .filter(|_| self.engine == Engine::Sqlite);
        if let Some(hand_on) = hand_on {
            let lane = job.job.lane();
            if let Some(next) = self.claim_job(lane, hand_on.lease, now).await? {
                let next = next.handing_on(hand_on.lease);
                self.handed_on = Some((hand_on.clone(), next));
            }
        }
        Ok(())
    }

    /// Hands the next job claimed by [`Tx::complete_job`] over to its lane: called once this
    /// transaction has committed, so the claim is durable.
    pub(super) fn hand_on(&mut self) {
        if let Some((hand_on, next)) = self.handed_on.take() {
            let mut slot = hand_on.next.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(next);
        }
    }

    /// Ends a claimed job (done, or given up with `error`); false when the claim is no longer
    /// the job's latest.
    async fn finish_job(
        &mut self,
        id: i64,
        lease: &str,
        now: DateTime<Utc>,
        error: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET done_at = $1, leased_until = NULL, last_error = COALESCE($2, last_error)
             WHERE id = $3 AND lease_token = $4 AND done_at IS NULL",
        )
        .bind(timestamp(now))
        .bind(error.map(storable))
        .bind(id)
        .bind(lease)
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether this claim is still the job's latest, read under the write lock: a worker whose
    /// lease passed to another records its calls but not an outcome.
    pub async fn holds_lease(&mut self, job: &ClaimedJob) -> Result<bool> {
        // Locked until this transaction ends, so a claim by another replica cannot take the
        // job between this answer and the outcome it lets the caller record.
        let held = format!(
            "SELECT 1 FROM outbox WHERE id = $1 AND lease_token = $2 AND done_at IS NULL{}",
            self.engine.for_update()
        );
        let held: Option<i64> = sqlx::query_scalar(&held)
            .bind(job.id)
            .bind(&job.lease)
            .fetch_optional(self.read_conn().await?)
            .await?;
        Ok(held.is_some())
    }

    /// Puts a claimed job back to run again at `run_after`, noting why; false when the claim
    /// is no longer the job's latest.
    pub async fn reschedule_job(
        &mut self,
        job: &ClaimedJob,
        run_after: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbox SET run_after = $1, leased_until = NULL, last_error = $2
             WHERE id = $3 AND lease_token = $4 AND done_at IS NULL",
        )
        .bind(timestamp(run_after))
        .bind(storable(error))
        .bind(job.id)
        .bind(&job.lease)
        .execute(self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Tx {
    /// Claims, in this transaction, the oldest due job in `lane` whose earlier jobs for the
    /// same proposal are done, so a proposal's card is posted before it is updated. In the
    /// 1Password lane a job also waits while another job for the same 1Password user is
    /// running: one action per user at a time, in the order they were approved. The claim is
    /// the caller's once this transaction commits.
    pub async fn claim_job(
        &mut self,
        lane: Lane,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedJob>> {
        let Some(until) = now.checked_add_signed(lease) else {
            return Ok(None);
        };
        let token = lease_token();
        if lane == Lane::OnePassword && matches!(self.inner, Some(Open::Postgres(_))) {
            // Outside the ledger's lock, 1Password claims take turns on a lock of their own.
            postgres::serialize_onepassword_claims(self.conn().await?).await?;
        }
        let claim = format!(
            "UPDATE outbox SET leased_until = $1, attempts = attempts + 1, lease_token = $4
             WHERE id = (
                 SELECT o.id FROM outbox o
                 WHERE o.lane = $2 AND o.done_at IS NULL AND o.run_after <= $3
                   AND (o.leased_until IS NULL OR o.leased_until <= $3)
                   AND NOT EXISTS (
                       SELECT 1 FROM outbox e
                       WHERE e.proposal_id = o.proposal_id AND e.lane = o.lane
                         AND e.done_at IS NULL AND e.id < o.id)
                   AND (o.lane <> 'onepassword' OR NOT EXISTS (
                       SELECT 1 FROM outbox r JOIN proposals rp ON rp.id = r.proposal_id
                       WHERE r.lane = 'onepassword' AND r.done_at IS NULL AND r.id <> o.id
                         AND r.leased_until > $3 AND rp.target_user_id =
                             (SELECT target_user_id FROM proposals WHERE id = o.proposal_id)))
                 ORDER BY o.priority, o.id
                 LIMIT 1{})
             RETURNING id, proposal_id, payload, attempts",
            self.engine.skip_locked()
        );
        let row = sqlx::query(&claim)
            .bind(timestamp(until))
            .bind(lane.as_str())
            .bind(timestamp(now))
            .bind(&token)
            .fetch_optional(self.conn().await?)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: i64 = row.get("id");
        let payload: String = row.get("payload");
        let proposal_id: String = row.get("proposal_id");
        let job = serde_json::from_str::<Job>(&payload).map_err(|e| e.to_string());
        let proposal_id = ProposalId::parse(&proposal_id);
        let (job, proposal_id) = match (job, proposal_id) {
            (Ok(job), Ok(proposal_id)) => (job, proposal_id),
            (Err(error), _) | (_, Err(error)) => {
                // A row no version of this code can run (written by a newer release, or
                // edited by hand): set it aside with the reason, so it never blocks its lane.
                tracing::error!(job_id = id, %error, "outbox job cannot be read; set aside");
                let why = format!("unreadable job: {error}");
                self.finish_job(id, &token, now, Some(&why)).await?;
                return Ok(None);
            }
        };
        Ok(Some(ClaimedJob {
            id,
            proposal_id,
            job,
            attempts: row.get::<i64, _>("attempts") as u32,
            lease: token,
            valid_until: std::sync::Arc::new(until.timestamp_millis().into()),
            hand_on: None,
        }))
    }
}

impl Ledger {
    /// Whether `lane` has a job due, read on a reader: a lane that looks on a poll asks here
    /// first, so looking and finding nothing never queues a write transaction behind the
    /// single writer.
    pub async fn has_due_job(&self, lane: Lane, now: DateTime<Utc>) -> Result<bool> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE lane = $1 AND done_at IS NULL AND run_after <= $2
               AND (leased_until IS NULL OR leased_until <= $2) LIMIT 1",
        )
        .bind(lane.as_str())
        .bind(timestamp(now))
        .fetch_optional(&self.reader)
        .await?;
        Ok(due.is_some())
    }

    /// Claims a job of `lane` and, where that saves a commit, leaves the claim's transaction
    /// open for the caller to go on in: on SQLite, whose one writer runs claims and decisions
    /// alike. On PostgreSQL the claim commits at once under row locks (no transaction is
    /// returned): under the ledger's lock its search would hold up every decision of every
    /// replica, and it did (BENCHMARKS.md, issue 25: a burst's executions took twice as long).
    pub async fn claim_job_to_go_on(
        &self,
        lane: Lane,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<(ClaimedJob, Option<Tx>)>> {
        if self.engine == Engine::Postgres {
            let claimed = self.claim_job(lane, lease, now).await?;
            return Ok(claimed.map(|job| (job, None)));
        }
        let mut tx = self.begin().await?;
        match tx.claim_job(lane, lease, now).await? {
            Some(job) => Ok(Some((job, Some(tx)))),
            None => {
                // It may have set aside a job it could not read.
                tx.commit().await?;
                Ok(None)
            }
        }
    }

    /// Claims a job of `lane` in a transaction of its own (see [`Tx::claim_job`]); on
    /// PostgreSQL under row locks, not the ledger's lock.
    pub async fn claim_job(
        &self,
        lane: Lane,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedJob>> {
        let mut tx = self.begin_outbox().await?;
        let claimed = tx.claim_job(lane, lease, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Takes `job` for this claim until `until`, unless another claim holds it: for a claim
    /// whose transaction may have rolled back (it shared it with work that failed), so the
    /// job waits a lease before it is tried again, as a job whose worker failed does.
    pub async fn hold_job(&self, job: &ClaimedJob, until: DateTime<Utc>) -> Result<bool> {
        let now = Utc::now();
        let mut tx = self.begin_outbox().await?;
        let held = sqlx::query(
            "UPDATE outbox SET leased_until = $1, lease_token = $2,
                 attempts = attempts + (CASE WHEN lease_token = $2 THEN 0 ELSE 1 END)
             WHERE id = $3 AND done_at IS NULL
               AND (lease_token = $2 OR leased_until IS NULL OR leased_until <= $4)",
        )
        .bind(timestamp(until))
        .bind(&job.lease)
        .bind(job.id)
        .bind(timestamp(now))
        .execute(tx.conn().await?)
        .await?;
        tx.commit().await?;
        Ok(held.rows_affected() == 1)
    }

    /// Gives a claimed job back unrun (a lane stopping with a job handed on to it): due again
    /// at once, and the claim not counted as an attempt.
    pub async fn release_job(&self, job: &ClaimedJob) -> Result<bool> {
        let mut tx = self.begin_outbox().await?;
        let done = sqlx::query(
            "UPDATE outbox SET leased_until = NULL, attempts = attempts - 1
             WHERE id = $1 AND lease_token = $2 AND done_at IS NULL",
        )
        .bind(job.id)
        .bind(&job.lease)
        .execute(tx.conn().await?)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn complete_job(&self, job: &ClaimedJob, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.complete_job(job, now).await?;
        tx.commit().await
    }

    /// Extends a running job's lease, if the claim is still the job's latest.
    pub async fn renew_lease(&self, job: &ClaimedJob, until: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.begin_outbox().await?;
        let done = sqlx::query(
            "UPDATE outbox SET leased_until = $1 WHERE id = $2 AND lease_token = $3 AND done_at IS NULL",
        )
        .bind(timestamp(until))
        .bind(job.id)
        .bind(&job.lease)
        .execute(tx.conn().await?)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts a job back to run again at `run_after`, noting why (fenced like [`Tx::reschedule_job`]).
    pub async fn reschedule_job(
        &self,
        job: &ClaimedJob,
        run_after: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = tx.reschedule_job(job, run_after, error).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Gives up on a job for good, keeping why (fenced).
    pub async fn abandon_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = tx.finish_job(job.id, &job.lease, now, Some(error)).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Jobs not yet done, per lane.
    pub async fn outbox_depth(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT lane, COUNT(*) AS n FROM outbox WHERE done_at IS NULL GROUP BY lane",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(|r| (r.get("lane"), r.get("n"))).collect())
    }
}
