//! Who opened countersign's Home tab lately, so every replica keeps their Home current.

use chrono::{DateTime, Utc};

use super::{timestamp, Ledger, Result};

impl Ledger {
    /// Records that `user` opened their Home at `at` (the latest opening counts).
    pub async fn home_opened(&self, user: &str, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin_outbox().await?;
        sqlx::query(
            "INSERT INTO home_openers (slack_user_id, opened_at) VALUES ($1, $2)
             ON CONFLICT (slack_user_id) DO UPDATE SET opened_at = excluded.opened_at",
        )
        .bind(user)
        .bind(timestamp(at))
        .execute(tx.conn().await?)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Who opened their Home since `since`.
    pub async fn home_openers_since(&self, since: DateTime<Utc>) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT slack_user_id FROM home_openers WHERE opened_at >= $1 ORDER BY slack_user_id",
        )
        .bind(timestamp(since))
        .fetch_all(&self.reader)
        .await
    }
}
