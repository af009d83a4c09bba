//! Drift watch storage: the states countersign last recorded of each user, the drifts it
//! noticed and their announcements, and the sweep's lease.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::audit_events::actor_of;
use super::chain::StoredEvent;
use super::engine::values_list;
use super::events::stored_event;
use super::{timestamp, Ledger, Result, Tx};
use crate::domain::attribution::Actor;
use crate::domain::drift::{Drift, Seen};
use crate::domain::{Action, Proposal, ProposalId, SlackRef, UserState};

/// A drift not yet announced in Slack.
#[derive(Debug, Clone)]
pub struct UnannouncedDrift {
    pub seq: i64,
    pub user_id: String,
    pub email: Option<String>,
    pub from: UserState,
    pub to: UserState,
    pub urgent: bool,
    pub noticed_at: String,
    /// Who made it, once an audit event named them.
    pub actor: Option<Actor>,
    /// The message that announced it before its actor was known: edited, not posted again.
    pub announced_in: Option<SlackRef>,
}

impl Tx {
    /// What countersign last recorded of each user's state.
    pub async fn known_states(&mut self) -> Result<HashMap<String, UserState>> {
        let rows = sqlx::query("SELECT user_id, state FROM user_states")
            .fetch_all(self.read_conn().await?)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("user_id"), UserState::parse(r.get("state"))))
            .collect())
    }

    /// Users countersign is acting on, with the state that action leads to: a proposal about
    /// them approved, executing, or failed (its call may have gone through before it failed).
    pub async fn users_in_hand(&mut self) -> Result<HashMap<String, UserState>> {
        let rows = sqlx::query(
            "SELECT target_user_id, action FROM proposals
             WHERE status IN ('approved', 'executing', 'failed') ORDER BY approved_at",
        )
        .fetch_all(self.read_conn().await?)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let action = Action::parse(r.get("action")).ok()?;
                Some((r.get("target_user_id"), action.target_state()))
            })
            .collect())
    }

    /// Users whose state countersign's own executions, or an audit event, recorded at or
    /// after `since`.
    pub async fn recorded_since(&mut self, since: DateTime<Utc>) -> Result<HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM user_states
             WHERE (proposal_id IS NOT NULL OR audit_event IS NOT NULL) AND seen_at >= $1",
        )
        .bind(timestamp(since))
        .fetch_all(self.read_conn().await?)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Whether `holder` still holds the lease `name` at `now`.
    pub async fn holds_named_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND until > $3",
        )
        .bind(name)
        .bind(holder)
        .bind(timestamp(now))
        .fetch_optional(self.read_conn().await?)
        .await?;
        Ok(held.is_some())
    }

    /// Records the states a listing taken at `listed_at` saw (users with a named state only),
    /// never over a record written after it.
    pub async fn record_seen(&mut self, seen: &[Seen], listed_at: DateTime<Utc>) -> Result<()> {
        let named: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.state != UserState::StateUnspecified)
            .collect();
        for chunk in named.chunks(500) {
            let sql = format!(
                "INSERT INTO user_states (user_id, email, state, seen_at, proposal_id) VALUES {}
                 ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,
                     state = excluded.state, seen_at = excluded.seen_at, proposal_id = NULL,
                     audit_event = NULL
                 WHERE user_states.seen_at <= excluded.seen_at",
                values_list(chunk.len(), 5)
            );
            let mut upsert = sqlx::query(&sql);
            for user in chunk {
                upsert = upsert
                    .bind(&user.user_id)
                    .bind(&user.email)
                    .bind(user.state.as_str())
                    .bind(timestamp(listed_at))
                    .bind(None::<String>);
            }
            upsert.execute(self.conn().await?).await?;
        }
        Ok(())
    }

    /// Records the state an executed proposal left its user in.
    pub async fn record_executed_state(
        &mut self,
        proposal: &Proposal,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(
            "INSERT INTO user_states (user_id, email, state, seen_at, proposal_id)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET email = $2, state = $3, seen_at = $4,
                 proposal_id = $5, audit_event = NULL",
        )
        .bind(proposal.target.id.as_str().to_owned())
        .bind(proposal.target.email.as_str().to_owned())
        .bind(proposal.target.state.as_str())
        .bind(timestamp(now))
        .bind(proposal.id.to_string())
        .run()
        .await?;
        Ok(())
    }

    /// Whether a first sweep already recorded its baseline.
    pub async fn has_drift_baseline(&mut self) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM ledger_events WHERE kind = 'drift.baseline' LIMIT 1")
                .fetch_optional(self.read_conn().await?)
                .await?;
        Ok(found.is_some())
    }

    /// The last proposal about `user_id` that countersign executed, if any.
    pub async fn last_executed_for(&mut self, user_id: &str) -> Result<Option<Proposal>> {
        let document: Option<String> = sqlx::query_scalar(
            "SELECT document FROM proposals WHERE target_user_id = $1 AND status = 'executed'
             ORDER BY approved_at DESC, id DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(self.read_conn().await?)
        .await?;
        document
            .map(|d| serde_json::from_str(&d).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()
    }

    /// Files a drift (recorded as event `seq`) for announcement.
    pub async fn insert_drift(
        &mut self,
        seq: i64,
        drift: &Drift,
        urgent: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO drifts (seq, user_id, email, from_state, to_state, urgent, noticed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(seq)
        .bind(&drift.user_id)
        .bind(&drift.email)
        .bind(drift.from.as_str())
        .bind(drift.to.as_str())
        .bind(i64::from(urgent))
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Takes (or renews) the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still running. Returns whether `holder` has it.
    pub async fn take_lease(
        &mut self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = $2, until = $3
             WHERE leases.holder = $2 OR leases.until <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(timestamp(until))
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Records that drift `seq` was announced (in `message`, when it is one that can be
    /// edited), or that its announcement was edited to name its actor.
    pub async fn mark_drift_announced(
        &mut self,
        seq: i64,
        message: Option<&SlackRef>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE drifts SET
                 edited_at = CASE WHEN announced_at IS NULL THEN NULL ELSE $1 END,
                 announced_at = COALESCE(announced_at, $1),
                 message_channel = COALESCE($2, message_channel),
                 message_ts = COALESCE($3, message_ts)
             WHERE seq = $4",
        )
        .bind(timestamp(now))
        .bind(message.map(|m| m.channel.as_str()))
        .bind(message.map(|m| m.ts.as_str()))
        .bind(seq)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }
}

impl Ledger {
    /// Drifts not yet announced, and announced ones whose actor became known since (their
    /// message is edited), oldest first.
    pub async fn unannounced_drifts(&self) -> Result<Vec<UnannouncedDrift>> {
        let rows = sqlx::query(
            "SELECT seq, user_id, email, from_state, to_state, urgent, noticed_at,
                    actor_uuid, actor_name, actor_email, actor_ip, actor_location, changed_at,
                    message_channel, message_ts
             FROM drifts
             WHERE announced_at IS NULL
                OR (attributed_at IS NOT NULL AND attributed_at > announced_at AND edited_at IS NULL
                    AND message_ts IS NOT NULL)
             ORDER BY seq LIMIT 100",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| UnannouncedDrift {
                seq: r.get("seq"),
                user_id: r.get("user_id"),
                email: r.get("email"),
                from: UserState::parse(r.get("from_state")),
                to: UserState::parse(r.get("to_state")),
                urgent: r.get::<i64, _>("urgent") != 0,
                noticed_at: r.get("noticed_at"),
                actor: actor_of(r),
                announced_in: match (r.get("message_channel"), r.get("message_ts")) {
                    (Some(channel), Some(ts)) => Some(SlackRef { channel, ts }),
                    _ => None,
                },
            })
            .collect())
    }

    /// The drift (`drift.detected`) event recorded as `seq`, if it is one.
    pub async fn drift_event(&self, seq: i64) -> Result<Option<StoredEvent>> {
        let row = sqlx::query(
            "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
             FROM ledger_events WHERE seq = $1 AND kind = 'drift.detected'",
        )
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_event))
    }

    /// `drift.detected` events at or after `since`, newest first, at most `limit`.
    pub async fn drift_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
             FROM ledger_events
             WHERE kind = 'drift.detected' AND ($1 IS NULL OR at >= $1)
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(since.map(timestamp))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_event).collect())
    }

    /// Drifts noticed, by the state users drifted to.
    pub async fn drift_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT to_state, COUNT(*) AS n FROM drifts GROUP BY to_state")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("to_state"), r.get("n")))
            .collect())
    }
}

/// The proposal id a drift payload names as countersign's last, if any.
pub fn last_proposal_of(event: &StoredEvent) -> Option<ProposalId> {
    event.payload["last_proposal"]["id"]
        .as_str()
        .and_then(|id| ProposalId::parse(id).ok())
}
