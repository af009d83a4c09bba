//! What the Events API poll keeps: the cursor every replica resumes from, each audit event
//! read (once, with what it was taken as), and the actor of each drift.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::proposals::decode;
use super::{timestamp, Ledger, Result, Tx};
use crate::domain::attribution::Actor;
use crate::domain::{Proposal, UserState};

const CURSOR: &str = "audit_events";

fn time(raw: Option<String>) -> Option<DateTime<Utc>> {
    raw.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.to_utc())
}

pub(super) fn actor_of(row: &sqlx::any::AnyRow) -> Option<Actor> {
    let at = time(row.get("changed_at"))?;
    Some(Actor {
        uuid: row.get("actor_uuid"),
        name: row.get("actor_name"),
        email: row.get("actor_email"),
        ip: row.get("actor_ip"),
        location: row.get("actor_location"),
        at,
    })
}

/// What an audit event was taken as.
#[derive(Debug, Clone, Copy)]
pub enum TakenAs<'a> {
    /// The record of countersign's own execution of this proposal.
    Confirmation(&'a Proposal),
    /// The actor of this drift.
    Drift(i64),
    /// Nothing countersign's records did not already show.
    Known,
}

impl Tx {
    /// Where the next poll starts, if a poll ever ran.
    pub async fn audit_cursor(&mut self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT cursor FROM audit_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_optional(self.read_conn().await?)
            .await
    }

    pub async fn save_audit_cursor(&mut self, cursor: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_cursor (name, cursor, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET cursor = $2, updated_at = $3",
        )
        .bind(CURSOR)
        .bind(cursor)
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Whether the audit event `uuid` was read before.
    pub async fn audit_event_read(&mut self, uuid: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM audit_events WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(self.read_conn().await?)
            .await?;
        Ok(found.is_some())
    }

    /// Records that the audit event `uuid` about `user_id` was read, and what it was taken as.
    pub async fn record_audit_event(
        &mut self,
        uuid: &str,
        user_id: &str,
        action: &str,
        occurred_at: DateTime<Utc>,
        taken_as: TakenAs<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (proposal, drift) = match taken_as {
            TakenAs::Confirmation(p) => (Some(p.id.to_string()), None),
            TakenAs::Drift(seq) => (None, Some(seq)),
            TakenAs::Known => (None, None),
        };
        sqlx::query(
            "INSERT INTO audit_events (uuid, user_id, action, occurred_at, proposal_id, drift_seq, read_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid)
        .bind(user_id)
        .bind(action)
        .bind(timestamp(occurred_at))
        .bind(proposal)
        .bind(drift)
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Proposals about `user_id` whose execution made a call and that no audit event has
    /// confirmed yet, newest first.
    pub async fn unconfirmed_executions(&mut self, user_id: &str) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(
            "SELECT document FROM proposals
             WHERE target_user_id = $1 AND status IN ('executing', 'executed', 'failed')
               AND id NOT IN (SELECT proposal_id FROM audit_events WHERE proposal_id IS NOT NULL)
             ORDER BY approved_at DESC LIMIT 20",
        )
        .bind(user_id)
        .fetch_all(self.read_conn().await?)
        .await?;
        rows.iter().map(|r| decode(r.get("document"))).collect()
    }

    /// The newest drift of `user_id` to `to` noticed since `since` that names nobody yet.
    pub async fn unattributed_drift(
        &mut self,
        user_id: &str,
        to: UserState,
        since: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT seq FROM drifts WHERE user_id = $1 AND to_state = $2
               AND attributed_at IS NULL AND noticed_at >= $3
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(to.as_str())
        .bind(timestamp(since))
        .fetch_optional(self.read_conn().await?)
        .await
    }

    /// Names who made drift `seq`.
    pub async fn attribute_drift(
        &mut self,
        seq: i64,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE drifts SET actor_uuid = $1, actor_name = $2, actor_email = $3, actor_ip = $4,
                 actor_location = $5, changed_at = $6, attributed_at = $7
             WHERE seq = $8",
        )
        .bind(&actor.uuid)
        .bind(&actor.name)
        .bind(&actor.email)
        .bind(&actor.ip)
        .bind(&actor.location)
        .bind(timestamp(actor.at))
        .bind(timestamp(now))
        .bind(seq)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// What countersign last recorded of `user_id`'s state.
    pub async fn known_state(&mut self, user_id: &str) -> Result<Option<UserState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM user_states WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.read_conn().await?)
                .await?;
        Ok(state.map(|s| UserState::parse(&s)))
    }

    /// Records the state audit event `uuid` told of, as newer than any listing taken before
    /// now (so a sweep whose listing predates it does not take the change back as drift).
    pub async fn record_observed_state(
        &mut self,
        user_id: &str,
        email: Option<&str>,
        state: UserState,
        uuid: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_states (user_id, email, state, seen_at, proposal_id, audit_event)
             VALUES ($1, $2, $3, $4, NULL, $5)
             ON CONFLICT (user_id) DO UPDATE SET email = COALESCE($2, user_states.email),
                 state = $3, seen_at = $4, proposal_id = NULL, audit_event = $5",
        )
        .bind(user_id)
        .bind(email)
        .bind(state.as_str())
        .bind(timestamp(now))
        .bind(uuid)
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }
}

impl Ledger {
    /// The actors of these drifts, where an audit event named them.
    pub async fn drift_actors(&self, seqs: &[i64]) -> Result<HashMap<i64, Actor>> {
        let mut actors = HashMap::new();
        for seq in seqs {
            let row = sqlx::query(
                "SELECT seq, actor_uuid, actor_name, actor_email, actor_ip, actor_location, changed_at
                 FROM drifts WHERE seq = $1",
            )
            .bind(seq)
            .fetch_optional(&self.reader)
            .await?;
            if let Some(actor) = row.as_ref().and_then(actor_of) {
                actors.insert(*seq, actor);
            }
        }
        Ok(actors)
    }

    /// Where the next poll starts, read outside a transaction (for `/readyz`).
    pub async fn audit_cursor_updated_at(&self) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT updated_at FROM audit_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_optional(&self.reader)
            .await
    }
}
