//! Seen Slack signatures: a signed request is single use, so the first delivery of a
//! signature records it and any later one finds it there. Kept in the ledger so that replicas
//! sharing one PostgreSQL database share what they have seen.

use chrono::{DateTime, Utc};

use super::{timestamp, Ledger, Result};

impl Ledger {
    /// Records the SHA-256 of a verified Slack request's signature; `true` for its first
    /// delivery, `false` when it was recorded already (a replay). Atomic whoever asks at once:
    /// the insert wins or finds the row. Signatures signed before `forget_signed_before` are
    /// pruned on the way, through an index, so the table holds only the last few minutes.
    pub async fn first_delivery(
        &self,
        signature_sha256: &str,
        signed_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
        forget_signed_before: DateTime<Utc>,
    ) -> Result<bool> {
        // Only this table's rows: no need to queue for the ledger's lock on PostgreSQL; the
        // primary key decides who came first.
        let mut tx = self.begin_outbox().await?;
        tx.write("DELETE FROM slack_signatures WHERE signed_at < $1")
            .bind(timestamp(forget_signed_before))
            .run()
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO slack_signatures (signature_sha256, signed_at, received_at)
             VALUES ($1, $2, $3) ON CONFLICT (signature_sha256) DO NOTHING",
        )
        .bind(signature_sha256)
        .bind(timestamp(signed_at))
        .bind(timestamp(received_at))
        .execute(tx.conn().await?)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }
}
