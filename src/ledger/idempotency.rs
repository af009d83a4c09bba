//! Idempotency keys: a key per token remembers the proposal its first request produced.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{timestamp, Ledger, Result, Tx};
use crate::domain::ProposalId;

/// What a key was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub body_sha256: String,
    pub proposal_id: ProposalId,
}

const LOOKUP: &str = "SELECT body_sha256, proposal_id FROM idempotency_keys
     WHERE token_id = $1 AND key = $2 AND created_at > $3";

fn remembered(row: sqlx::any::AnyRow) -> Result<Remembered> {
    let id: String = row.get("proposal_id");
    Ok(Remembered {
        body_sha256: row.get("body_sha256"),
        proposal_id: ProposalId::parse(&id).map_err(|e| sqlx::Error::Decode(e.into()))?,
    })
}

/// Looks a live key up through any connection: the reader pool, or a write transaction.
async fn lookup<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    token_id: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Result<Option<Remembered>> {
    let row = sqlx::query(LOOKUP)
        .bind(token_id)
        .bind(key)
        .bind(timestamp(since))
        .fetch_optional(executor)
        .await?;
    row.map(remembered).transpose()
}

impl Ledger {
    /// A live key's record; keys older than `since` are forgotten.
    pub async fn idempotency_key(
        &self,
        token_id: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Remembered>> {
        lookup(&self.reader, token_id, key, since).await
    }
}

impl Tx {
    pub async fn idempotency_key(
        &mut self,
        token_id: &str,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Remembered>> {
        lookup(self.read_conn().await?, token_id, key, since).await
    }

    /// Remembers a key; an expired record of the same key is replaced, and every key older
    /// than `expired_before` is forgotten, so the table holds one day of keys, not all of them.
    pub async fn remember_idempotency_key(
        &mut self,
        token_id: &str,
        key: &str,
        body_sha256: &str,
        proposal_id: ProposalId,
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<()> {
        self.write("DELETE FROM idempotency_keys WHERE created_at <= $1")
            .bind(timestamp(expired_before))
            .run()
            .await?;
        self.write(
            "INSERT INTO idempotency_keys (token_id, key, body_sha256, proposal_id, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (token_id, key) DO UPDATE SET body_sha256 = excluded.body_sha256,
                 proposal_id = excluded.proposal_id, created_at = excluded.created_at",
        )
        .bind(token_id.to_owned())
        .bind(key.to_owned())
        .bind(body_sha256.to_owned())
        .bind(proposal_id.to_string())
        .bind(timestamp(now))
        .run()
        .await
    }
}
