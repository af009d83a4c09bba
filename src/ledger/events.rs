//! Appending to and reading the hash-chained event log.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use super::chain::{self, ChainBreak, ChainHead, StoredEvent, Verifier};
use super::{timestamp, Ledger, Result, Tx};
use crate::domain::ProposalId;

/// Every kind of event the ledger holds (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ProposalCreated,
    ProposalEvidenceAdded,
    ApprovalRecorded,
    ProposalApproved,
    ProposalDenied,
    ProposalExpired,
    ProposalCancelled,
    SlackCardPosted,
    ExecutionStarted,
    ExecutionAttemptFailed,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionRetryRequested,
    CallbackAttempted,
    TokenCreated,
    TokenRevoked,
    LedgerCheckpoint,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProposalCreated => "proposal.created",
            EventKind::ProposalEvidenceAdded => "proposal.evidence_added",
            EventKind::ApprovalRecorded => "approval.recorded",
            EventKind::ProposalApproved => "proposal.approved",
            EventKind::ProposalDenied => "proposal.denied",
            EventKind::ProposalExpired => "proposal.expired",
            EventKind::ProposalCancelled => "proposal.cancelled",
            EventKind::SlackCardPosted => "slack.card_posted",
            EventKind::ExecutionStarted => "execution.started",
            EventKind::ExecutionAttemptFailed => "execution.attempt_failed",
            EventKind::ExecutionSucceeded => "execution.succeeded",
            EventKind::ExecutionFailed => "execution.failed",
            EventKind::ExecutionRetryRequested => "execution.retry_requested",
            EventKind::CallbackAttempted => "callback.attempted",
            EventKind::TokenCreated => "token.created",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::LedgerCheckpoint => "ledger.checkpoint",
        }
    }
}

impl Tx {
    /// Appends one event after the current head and returns its seq.
    pub async fn append(
        &mut self,
        proposal_id: Option<ProposalId>,
        kind: EventKind,
        actor: &str,
        payload: Value,
        at: DateTime<Utc>,
    ) -> Result<i64> {
        debug_assert!(payload.is_object(), "ledger payloads are JSON objects");
        let head = sqlx::query("SELECT seq, hash FROM ledger_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *self.inner)
            .await?;
        let (prev_seq, prev_hash) = match head {
            Some(row) => (row.get::<i64, _>("seq"), row.get::<String, _>("hash")),
            None => (0, chain::GENESIS.to_owned()),
        };
        let seq = prev_seq + 1;
        let at = timestamp(at);
        let proposal_id = proposal_id.map(|id| id.to_string());
        let hash = chain::event_hash(
            &prev_hash,
            seq,
            proposal_id.as_deref(),
            &at,
            kind.as_str(),
            actor,
            &payload,
        );
        sqlx::query(
            "INSERT INTO ledger_events (seq, proposal_id, at, kind, actor, payload, prev_hash, hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(proposal_id)
        .bind(at)
        .bind(kind.as_str())
        .bind(actor)
        .bind(payload.to_string())
        .bind(prev_hash)
        .bind(hash)
        .execute(&mut *self.inner)
        .await?;
        Ok(seq)
    }
}

impl Ledger {
    /// Events with `seq > after_seq`, oldest first, at most `limit`.
    pub async fn events(&self, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
             FROM ledger_events WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| {
                let payload: String = row.get("payload");
                Ok(StoredEvent {
                    seq: row.get("seq"),
                    proposal_id: row.get("proposal_id"),
                    at: row.get("at"),
                    kind: row.get("kind"),
                    actor: row.get("actor"),
                    // A payload that is no longer JSON was edited; keep it as a string so the
                    // hash check names the row instead of the read failing.
                    payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                    prev_hash: row.get("prev_hash"),
                    hash: row.get("hash"),
                })
            })
            .collect()
    }

    /// Events about one proposal, oldest first.
    pub async fn proposal_events(&self, id: ProposalId) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT kind, actor FROM ledger_events WHERE proposal_id = ? ORDER BY seq")
                .bind(id.to_string())
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("kind"), r.get("actor")))
            .collect())
    }

    /// Recomputes the whole chain, a page at a time so memory stays flat at any size.
    pub async fn verify(&self) -> Result<std::result::Result<ChainHead, ChainBreak>> {
        const PAGE: i64 = 10_000;
        let mut verifier = Verifier::default();
        let mut after = 0;
        loop {
            let page = self.events(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for event in &page {
                if let Err(broken) = verifier.check(event) {
                    return Ok(Err(broken));
                }
            }
        }
        Ok(Ok(verifier.finish()))
    }
}
