//! Proposal state: one row per proposal holding its document, plus the approvals table whose
//! primary key makes a second vote by the same person impossible at the database level.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{timestamp, Ledger, Result, Tx};
use crate::domain::{
    Action, Approval, Email, OnePasswordUserId, Proposal, ProposalId, Requester, Status,
};

/// Filters for listing proposals, newest first.
#[derive(Debug, Clone, Default)]
pub struct ProposalQuery {
    pub status: Option<Status>,
    pub action: Option<Action>,
    /// Only proposals older than this one (the previous page's last id).
    pub before: Option<ProposalId>,
    /// Only proposals about the user with this email.
    pub target_email: Option<Email>,
    pub limit: u32,
}

/// When proposal `$2` became approved as the ledger orders decisions: the time stored when it
/// first was (see [`Tx::decision_time`]), or `$3`, the domain's, when it is not saved yet. A
/// subquery, not a read of its own: one round trip fewer under the write lock.
const DECIDED_AT: &str = "COALESCE((SELECT approved_at FROM proposals WHERE id = $2), $3)";

pub(super) fn decode(document: &str) -> Result<Proposal> {
    serde_json::from_str(document).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn encode(proposal: &Proposal) -> String {
    serde_json::to_string(proposal).expect("a proposal always serializes")
}

fn token_id(proposal: &Proposal) -> Option<&str> {
    match &proposal.requester {
        Requester::Integration { token_id, .. } => Some(token_id),
        Requester::SlackUser { .. } => None,
    }
}

impl Tx {
    pub async fn insert_proposal(&mut self, proposal: &Proposal, now: DateTime<Utc>) -> Result<()> {
        self.write(
            "INSERT INTO proposals (id, action, status, target_user_id, requester_token_id,
                 created_at, expires_at, approved_at, slack_channel, slack_ts, document, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(proposal.id.to_string())
        .bind(proposal.action.as_str())
        .bind(proposal.status.as_str())
        .bind(proposal.target.id.as_str().to_owned())
        .bind(token_id(proposal).map(str::to_owned))
        .bind(timestamp(proposal.created_at))
        .bind(timestamp(proposal.expires_at))
        .bind(proposal.decided_at().map(timestamp))
        .bind(proposal.slack.as_ref().map(|s| s.channel.clone()))
        .bind(proposal.slack.as_ref().map(|s| s.ts.clone()))
        .bind(encode(proposal))
        .bind(timestamp(now))
        .run()
        .await?;
        Ok(())
    }

    /// Writes the proposal's new state. The caller read it in this same transaction.
    pub async fn save_proposal(&mut self, proposal: &Proposal, now: DateTime<Utc>) -> Result<()> {
        self.write(
            "UPDATE proposals SET status = $1, approved_at = COALESCE(approved_at, $2),
                 slack_channel = $3, slack_ts = $4,
                 expires_at = $5, document = $6, updated_at = $7,
                 incident_id = $8, incident_card = $9, incident_seq = $10
             WHERE id = $11",
        )
        .bind(proposal.status.as_str())
        .bind(proposal.decided_at().map(timestamp))
        .bind(proposal.slack.as_ref().map(|s| s.channel.clone()))
        .bind(proposal.slack.as_ref().map(|s| s.ts.clone()))
        .bind(timestamp(proposal.expires_at))
        .bind(encode(proposal))
        .bind(timestamp(now))
        .bind(proposal.incident.map(|seat| seat.incident.to_string()))
        .bind(proposal.incident.map(|seat| i64::from(seat.card)))
        .bind(proposal.incident.map(|seat| i64::from(seat.seq)))
        .bind(proposal.id.to_string())
        .run()
        .await?;
        Ok(())
    }

    pub async fn insert_approval(
        &mut self,
        id: ProposalId,
        approval: &Approval,
        email: Option<&Email>,
    ) -> Result<()> {
        self.write("INSERT INTO approvals (proposal_id, slack_user_id, name, email, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(approval.slack_user_id.as_str().to_owned())
            .bind(super::storable(&approval.name))
            .bind(email.map(|e| e.as_str().to_owned()))
            .bind(timestamp(approval.at))
            .run()
            .await?;
        Ok(())
    }

    /// Reads a proposal inside the write transaction, so what the caller decides from it
    /// cannot be overtaken by another writer.
    pub async fn proposal(&mut self, id: ProposalId) -> Result<Option<Proposal>> {
        let row = sqlx::query("SELECT document FROM proposals WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.read_conn().await?)
            .await?;
        row.map(|r| decode(r.get("document"))).transpose()
    }

    /// Marks a pending proposal reminded; false when it was already, or is no longer pending.
    pub async fn mark_reminded(&mut self, id: ProposalId, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE proposals SET reminded_at = $1 WHERE id = $2 AND status = 'pending' AND reminded_at IS NULL")
            .bind(timestamp(now))
            .bind(id.to_string())
            .execute(self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a pending proposal escalated; false when it was already, or is no longer pending
    /// (so replicas escalate it once, and never after a decision).
    pub async fn mark_escalated(&mut self, id: ProposalId, now: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE proposals SET escalated_at = $1 WHERE id = $2 AND status = 'pending' AND escalated_at IS NULL")
            .bind(timestamp(now))
            .bind(id.to_string())
            .execute(self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The newest proposal about `user` made after `than`, if any.
    pub async fn newer_proposal_for(
        &mut self,
        user: &OnePasswordUserId,
        than: ProposalId,
    ) -> Result<Option<ProposalId>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM proposals WHERE target_user_id = $1 AND id > $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(user.as_str())
        .bind(than.to_string())
        .fetch_optional(self.read_conn().await?)
        .await?;
        id.map(|id| ProposalId::parse(&id).map_err(|e| sqlx::Error::Decode(e.into())))
            .transpose()
    }

    /// When the ledger last saw `user`'s state change by any path but proposal `except`: a
    /// drift (the console, another tool) or another proposal's execution.
    pub async fn last_change_of(
        &mut self,
        user: &OnePasswordUserId,
        except: ProposalId,
    ) -> Result<Option<DateTime<Utc>>> {
        let at: Option<String> = sqlx::query_scalar(
            "SELECT MAX(at) FROM (
                 SELECT noticed_at AS at FROM drifts WHERE user_id = $1
                 UNION ALL
                 SELECT updated_at AS at FROM proposals
                 WHERE target_user_id = $1 AND status = 'executed' AND id <> $2
             ) AS changes",
        )
        .bind(user.as_str())
        .bind(except.to_string())
        .fetch_one(self.read_conn().await?)
        .await?;
        at.map(|at| {
            DateTime::parse_from_rfc3339(&at)
                .map(|t| t.to_utc())
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .transpose()
    }

    /// The latest decision about the same user approved after `proposal` was, if any: its
    /// approval overtakes this one, which must then make no call (DESIGN §2).
    pub async fn newer_decision_than(&mut self, proposal: &Proposal) -> Result<Option<ProposalId>> {
        let Some(decided) = proposal.decided_at() else {
            return Ok(None);
        };
        // The stored time, not the domain's: it is the one every replica compares.
        let sql = format!(
            "WITH mine AS (SELECT {DECIDED_AT} AS at)
             SELECT p.id FROM proposals p, mine
             WHERE p.target_user_id = $1 AND p.id <> $2 AND p.approved_at IS NOT NULL
               AND (p.approved_at > mine.at OR (p.approved_at = mine.at AND p.id > $2))
             ORDER BY p.approved_at DESC, p.id DESC LIMIT 1"
        );
        let id: Option<String> = sqlx::query_scalar(&sql)
            .bind(proposal.target.id.as_str())
            .bind(proposal.id.to_string())
            .bind(timestamp(decided))
            .fetch_optional(self.read_conn().await?)
            .await?;
        id.map(|id| ProposalId::parse(&id).map_err(|e| sqlx::Error::Decode(e.into())))
            .transpose()
    }

    /// Decisions about the same user approved before `proposal` that have not started a call
    /// (approved, or failed and waiting for a Retry).
    pub async fn older_waiting_decisions(&mut self, proposal: &Proposal) -> Result<Vec<Proposal>> {
        let Some(decided) = proposal.decided_at() else {
            return Ok(vec![]);
        };
        let sql = format!(
            "WITH mine AS (SELECT {DECIDED_AT} AS at)
             SELECT p.document FROM proposals p, mine
             WHERE p.target_user_id = $1 AND p.id <> $2 AND p.status IN ('approved', 'failed')
               AND (p.approved_at < mine.at OR (p.approved_at = mine.at AND p.id < $2))
             ORDER BY p.approved_at"
        );
        let rows = sqlx::query(&sql)
            .bind(proposal.target.id.as_str())
            .bind(proposal.id.to_string())
            .bind(timestamp(decided))
            .fetch_all(self.read_conn().await?)
            .await?;
        rows.iter().map(|r| decode(r.get("document"))).collect()
    }

    /// Orders an approval by a policy rule among the decisions about its user: stored as
    /// [`Tx::decision_time`] of its creation, since its approval has no time of its own.
    pub async fn order_decision(&mut self, proposal: &Proposal) -> Result<()> {
        let at = self
            .decision_time(&proposal.target.id, proposal.created_at)
            .await?;
        self.write("UPDATE proposals SET approved_at = $1 WHERE id = $2")
            .bind(timestamp(at))
            .bind(proposal.id.to_string())
            .run()
            .await?;
        Ok(())
    }

    /// The pending proposal for this user and action, if there is one.
    pub async fn pending_for(&mut self, user: &OnePasswordUserId) -> Result<Option<Proposal>> {
        let row = sqlx::query(
            "SELECT document FROM proposals WHERE target_user_id = $1 AND status = 'pending'
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user.as_str())
        .fetch_optional(self.read_conn().await?)
        .await?;
        row.map(|r| decode(r.get("document"))).transpose()
    }
}

impl Ledger {
    pub async fn proposal(&self, id: ProposalId) -> Result<Option<Proposal>> {
        let row = sqlx::query("SELECT document FROM proposals WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| decode(r.get("document"))).transpose()
    }

    pub async fn proposals(&self, query: &ProposalQuery) -> Result<Vec<Proposal>> {
        let sql = format!(
            "SELECT document FROM proposals
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR id < $3)
               AND ($5 IS NULL OR {} = $5)
             ORDER BY id DESC LIMIT $4",
            self.engine.json_text("document", &["target", "email"])
        );
        let rows = sqlx::query(&sql)
            .bind(query.status.map(Status::as_str))
            .bind(query.action.map(Action::as_str))
            .bind(query.before.map(|id| id.to_string()))
            .bind(i64::from(query.limit))
            .bind(query.target_email.as_ref().map(Email::as_str))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| decode(r.get("document"))).collect()
    }

    /// How many proposals there are per action and status.
    pub async fn proposal_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT action, status, COUNT(*) AS n FROM proposals GROUP BY action, status",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("action"), r.get("status"), r.get("n")))
            .collect())
    }

    /// Pending proposals created at or before `before` whose card was never posted.
    pub async fn overdue_cards(&self, before: DateTime<Utc>) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM proposals
             WHERE status = 'pending' AND slack_ts IS NULL AND created_at <= $1",
        )
        .bind(timestamp(before))
        .fetch_one(&self.reader)
        .await
    }

    /// Pending proposals not yet reminded about, oldest first.
    pub async fn unreminded_pending(&self) -> Result<Vec<Proposal>> {
        let rows = sqlx::query("SELECT document FROM proposals WHERE status = 'pending' AND reminded_at IS NULL ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| decode(r.get("document"))).collect()
    }

    /// Pending proposals with a card, not yet escalated, oldest first.
    pub async fn unescalated_pending(&self) -> Result<Vec<Proposal>> {
        let rows = sqlx::query("SELECT document FROM proposals WHERE status = 'pending' AND escalated_at IS NULL AND slack_ts IS NOT NULL ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| decode(r.get("document"))).collect()
    }

    /// Ids of pending proposals whose time ran out by `now`.
    pub async fn expired_pending(&self, now: DateTime<Utc>) -> Result<Vec<ProposalId>> {
        let rows =
            sqlx::query("SELECT id FROM proposals WHERE status = 'pending' AND expires_at <= $1")
                .bind(timestamp(now))
                .fetch_all(&self.reader)
                .await?;
        rows.iter()
            .map(|r| ProposalId::parse(r.get("id")).map_err(|e| sqlx::Error::Decode(e.into())))
            .collect()
    }
}
