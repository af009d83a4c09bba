//! The outbox: work caused by a ledger event, written in that event's transaction and done by
//! the worker. A job is claimed with a lease (a conditional UPDATE, SQLite's stand-in for
//! `SKIP LOCKED`), so a crashed worker's job is picked up again once its lease runs out.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{timestamp, Ledger, Result, Tx};
use crate::domain::{Proposal, ProposalId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Post the approval card, once.
    PostCard,
    /// Re-render the card from the proposal's current state.
    UpdateCard,
    /// A reply in the card's thread.
    ThreadReply { text: String },
    /// Carry out the approved action in 1Password.
    Execute,
    /// Tell the proposal's callback_url what happened; `body` is fixed when the event happens.
    Callback { event: String, body: String },
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

    fn name(&self) -> &'static str {
        match self {
            Job::PostCard => "post_card",
            Job::UpdateCard => "update_card",
            Job::ThreadReply { .. } => "thread_reply",
            Job::Execute => "execute",
            Job::Callback { .. } => "callback",
        }
    }
}

impl Lane {
    fn as_str(self) -> &'static str {
        match self {
            Lane::Slack => "slack",
            Lane::OnePassword => "onepassword",
            Lane::Callback => "callback",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub proposal_id: ProposalId,
    pub job: Job,
    /// Including this one.
    pub attempts: u32,
}

impl Tx {
    pub async fn enqueue(
        &mut self,
        proposal_id: ProposalId,
        job: Job,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (proposal_id, lane, kind, payload, created_at, run_after)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(proposal_id.to_string())
        .bind(job.lane().as_str())
        .bind(job.name())
        .bind(serde_json::to_string(&job).expect("a job always serializes"))
        .bind(timestamp(now))
        .bind(timestamp(now))
        .execute(&mut *self.inner)
        .await?;
        Ok(())
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
        let body = serde_json::json!({"event": event.as_str(), "proposal": proposal}).to_string();
        self.enqueue(
            proposal.id,
            Job::Callback {
                event: event.as_str().to_owned(),
                body,
            },
            now,
        )
        .await
    }

    pub async fn complete_job(&mut self, id: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE outbox SET done_at = ?, leased_until = NULL WHERE id = ?")
            .bind(timestamp(now))
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

impl Ledger {
    /// Claims the oldest due job in `lane` whose earlier jobs for the same proposal are done,
    /// so a proposal's card is posted before it is updated.
    pub async fn claim_job(
        &self,
        lane: Lane,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<ClaimedJob>> {
        // Every commit wakes every lane; look on a reader first, so a lane with nothing due
        // does not queue a write transaction behind the single writer.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox WHERE lane = ?1 AND done_at IS NULL AND run_after <= ?2
               AND (leased_until IS NULL OR leased_until <= ?2) LIMIT 1",
        )
        .bind(lane.as_str())
        .bind(timestamp(now))
        .fetch_optional(&self.reader)
        .await?;
        if due.is_none() {
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE outbox SET leased_until = ?1, attempts = attempts + 1
             WHERE id = (
                 SELECT o.id FROM outbox o
                 WHERE o.lane = ?2 AND o.done_at IS NULL AND o.run_after <= ?3
                   AND (o.leased_until IS NULL OR o.leased_until <= ?3)
                   AND NOT EXISTS (
                       SELECT 1 FROM outbox e
                       WHERE e.proposal_id = o.proposal_id AND e.lane = o.lane
                         AND e.done_at IS NULL AND e.id < o.id)
                 ORDER BY o.id LIMIT 1)
             RETURNING id, proposal_id, payload, attempts",
        )
        .bind(timestamp(now + lease))
        .bind(lane.as_str())
        .bind(timestamp(now))
        .fetch_optional(&mut *tx.inner)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.get("payload");
        let proposal_id: String = row.get("proposal_id");
        Ok(Some(ClaimedJob {
            id: row.get("id"),
            proposal_id: ProposalId::parse(&proposal_id)
                .map_err(|e| sqlx::Error::Decode(e.into()))?,
            job: serde_json::from_str(&payload).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            attempts: row.get::<i64, _>("attempts") as u32,
        }))
    }

    pub async fn complete_job(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.complete_job(id, now).await?;
        tx.commit().await
    }

    /// Extends a running job's lease.
    pub async fn renew_lease(&self, id: i64, until: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE outbox SET leased_until = ? WHERE id = ? AND done_at IS NULL")
            .bind(timestamp(until))
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Puts a job back to run again at `run_after`, noting why.
    pub async fn reschedule_job(
        &self,
        id: i64,
        run_after: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET run_after = ?, leased_until = NULL, last_error = ? WHERE id = ?",
        )
        .bind(timestamp(run_after))
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Gives up on a job for good, keeping why.
    pub async fn abandon_job(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET done_at = ?, leased_until = NULL, last_error = ? WHERE id = ?",
        )
        .bind(timestamp(now))
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
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
