//! Appending to and reading the hash-chained event log.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;

use super::chain::{self, BreakKind, ChainBreak, ChainHead, StoredEvent};
use super::{timestamp, Ledger, Result, Tx};
use crate::domain::{OnePasswordUserId, ProposalId};

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub after_seq: i64,
    pub limit: i64,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub proposal_id: Option<ProposalId>,
}

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
    ProposalRequestWithdrawn,
    ProposalSuperseded,
    ProposalEscalated,
    SlackCardPosted,
    IncidentOpened,
    ExecutionConfirmed,
    DriftAttributed,
    ExecutionStarted,
    ExecutionAttemptFailed,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionRetryRequested,
    CallbackAttempted,
    TokenCreated,
    TokenRevoked,
    LedgerCheckpoint,
    DriftBaseline,
    DriftDetected,
    PasskeyInvited,
    PasskeyEnrolled,
    PasskeyRevoked,
    PasskeyRefused,
    GatewayClientCreated,
    GatewayClientRevoked,
    GatewayTokenIssued,
    GatewayTokenRevoked,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProposalCreated => "proposal.created",
            EventKind::ProposalEvidenceAdded => "proposal.evidence_added",
            EventKind::ProposalEscalated => "proposal.escalated",
            EventKind::ApprovalRecorded => "approval.recorded",
            EventKind::ProposalApproved => "proposal.approved",
            EventKind::ProposalDenied => "proposal.denied",
            EventKind::ProposalExpired => "proposal.expired",
            EventKind::ProposalCancelled => "proposal.cancelled",
            EventKind::ProposalRequestWithdrawn => "proposal.request_withdrawn",
            EventKind::ProposalSuperseded => "proposal.superseded",
            EventKind::SlackCardPosted => "slack.card_posted",
            EventKind::IncidentOpened => "incident.opened",
            EventKind::ExecutionConfirmed => "execution.confirmed",
            EventKind::DriftAttributed => "drift.attributed",
            EventKind::ExecutionStarted => "execution.started",
            EventKind::ExecutionAttemptFailed => "execution.attempt_failed",
            EventKind::ExecutionSucceeded => "execution.succeeded",
            EventKind::ExecutionFailed => "execution.failed",
            EventKind::ExecutionRetryRequested => "execution.retry_requested",
            EventKind::CallbackAttempted => "callback.attempted",
            EventKind::TokenCreated => "token.created",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::LedgerCheckpoint => "ledger.checkpoint",
            EventKind::DriftBaseline => "drift.baseline",
            EventKind::DriftDetected => "drift.detected",
            EventKind::PasskeyInvited => "passkey.invited",
            EventKind::PasskeyEnrolled => "passkey.enrolled",
            EventKind::PasskeyRevoked => "passkey.revoked",
            EventKind::PasskeyRefused => "passkey.refused",
            EventKind::GatewayClientCreated => "gateway.client_created",
            EventKind::GatewayClientRevoked => "gateway.client_revoked",
            EventKind::GatewayTokenIssued => "gateway.token_issued",
            EventKind::GatewayTokenRevoked => "gateway.token_revoked",
        }
    }
}

const LAST_CHECKPOINTED: &str = "SELECT COALESCE(
         (SELECT at FROM ledger_events WHERE kind = 'ledger.checkpoint' ORDER BY seq DESC LIMIT 1),
         (SELECT at FROM ledger_events WHERE seq = 1))";

fn parse_time(at: Option<String>) -> Option<DateTime<Utc>> {
    at.and_then(|at| DateTime::parse_from_rfc3339(&at).ok().map(|t| t.to_utc()))
}

/// An event row as read back.
pub(super) fn stored_event(row: &sqlx::any::AnyRow) -> StoredEvent {
    let payload: String = row.get("payload");
    StoredEvent {
        seq: row.get("seq"),
        proposal_id: row.get("proposal_id"),
        at: row.get("at"),
        kind: row.get("kind"),
        actor: row.get("actor"),
        // A payload that is no longer JSON was edited; keep it as a string so the hash check
        // names the row instead of the read failing.
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

impl Tx {
    /// The last event's seq and hash (0 and the genesis hash when empty).
    pub async fn head(&mut self) -> Result<(i64, String)> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let row = sqlx::query("SELECT seq, hash FROM ledger_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.read_conn().await?)
            .await?;
        let head = match row {
            Some(row) => (row.get("seq"), row.get("hash")),
            None => (0, chain::GENESIS.to_owned()),
        };
        self.head = Some(head.clone());
        Ok(head)
    }

    /// The time to record a decision about `user` at: the clock, or a microsecond after the
    /// last decision about the user when that is later. Decisions commit one at a time under
    /// the write lock, so their times then follow commit order even when replicas' clocks
    /// disagree — the order the superseding rule reads "newer" from.
    pub async fn decision_time(
        &mut self,
        user: &OnePasswordUserId,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        let last: Option<String> =
            sqlx::query_scalar("SELECT MAX(approved_at) FROM proposals WHERE target_user_id = $1")
                .bind(user.as_str())
                .fetch_one(self.read_conn().await?)
                .await?;
        Ok(match parse_time(last) {
            Some(last) if last >= now => last + chrono::Duration::microseconds(1),
            _ => now,
        })
    }

    /// The payloads of a proposal's `execution.*` events, oldest first, with their kinds: what
    /// every earlier attempt did, read inside the transaction that starts or records the next.
    pub async fn execution_events(&mut self, id: ProposalId) -> Result<Vec<(String, Value)>> {
        let rows = sqlx::query(
            "SELECT kind, payload FROM ledger_events
             WHERE proposal_id = $1 AND kind LIKE 'execution.%' ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(self.read_conn().await?)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let payload: String = row.get("payload");
                (
                    row.get("kind"),
                    serde_json::from_str(&payload).unwrap_or(Value::Null),
                )
            })
            .collect())
    }

    /// How many proposals `actor` approved since `since` (an auto-approve rule's hourly use).
    pub async fn approvals_by_since(&mut self, actor: &str, since: DateTime<Utc>) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ledger_events WHERE kind = 'proposal.approved' AND actor = $1 AND at >= $2",
        )
        .bind(actor)
        .bind(timestamp(since))
        .fetch_one(self.read_conn().await?)
        .await?;
        Ok(count as u64)
    }

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
        let (prev_seq, prev_hash) = self.head().await?;
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
        self.write(
            "INSERT INTO ledger_events (seq, proposal_id, at, kind, actor, payload, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(proposal_id)
        .bind(at)
        .bind(kind.as_str())
        .bind(actor.to_owned())
        .bind(payload.to_string())
        .bind(prev_hash)
        .bind(hash.clone())
        .run()
        .await?;
        self.head = Some((seq, hash));
        Ok(seq)
    }
}

impl Ledger {
    /// Writes a `ledger.checkpoint` naming the current head, and returns that seq and hash:
    /// copied outside the database, they make a truncated or rewritten tail detectable.
    pub async fn checkpoint(&self, at: DateTime<Utc>) -> Result<(i64, String)> {
        let mut tx = self.begin().await?;
        let (seq, hash) = tx.head().await?;
        let payload = serde_json::json!({"head_seq": seq, "head_hash": hash});
        tx.append(None, EventKind::LedgerCheckpoint, "system", payload, at)
            .await?;
        tx.commit().await?;
        Ok((seq, hash))
    }

    /// Writes a checkpoint at `at` only if the chain was last checkpointed (see
    /// [`Ledger::last_checkpointed`]) at or before `cutoff`, decided under the write lock: of
    /// replicas that find a checkpoint due at the same moment, one writes it. `None` when it
    /// was not due (another replica wrote it, or the ledger is empty).
    pub async fn checkpoint_if_last_before(
        &self,
        at: DateTime<Utc>,
        cutoff: DateTime<Utc>,
    ) -> Result<Option<(i64, String)>> {
        let mut tx = self.begin().await?;
        let last = sqlx::query_scalar(LAST_CHECKPOINTED)
            .fetch_one(tx.read_conn().await?)
            .await?;
        if parse_time(last).is_none_or(|last| last > cutoff) {
            return Ok(None);
        }
        let (seq, hash) = tx.head().await?;
        let payload = serde_json::json!({"head_seq": seq, "head_hash": hash});
        tx.append(None, EventKind::LedgerCheckpoint, "system", payload, at)
            .await?;
        tx.commit().await?;
        Ok(Some((seq, hash)))
    }

    /// When the chain was last checkpointed: the last `ledger.checkpoint`, or, when there
    /// never was one, the first event (the chain has gone uncheckpointed since). `None` for an
    /// empty ledger.
    pub async fn last_checkpointed(&self) -> Result<Option<DateTime<Utc>>> {
        let at = sqlx::query_scalar(LAST_CHECKPOINTED)
            .fetch_one(&self.reader)
            .await?;
        Ok(parse_time(at))
    }

    /// Events with `seq > after_seq`, oldest first, at most `limit`.
    pub async fn events(&self, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>> {
        self.events_where(&EventQuery {
            after_seq,
            limit,
            ..EventQuery::default()
        })
        .await
    }

    /// Events matching `query`, oldest first.
    pub async fn events_where(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
             FROM ledger_events
             WHERE seq > $1 AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR proposal_id = $4)
             ORDER BY seq LIMIT $2",
        )
        .bind(query.after_seq)
        .bind(query.limit)
        .bind(query.since.map(timestamp))
        .bind(query.proposal_id.map(|id| id.to_string()))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_event).collect())
    }

    /// Tells a deleted event from a reordered one: a row whose prev_hash is another row's
    /// hash was moved; one whose prev_hash is nowhere lost its predecessor.
    pub(super) async fn explain(
        &self,
        broken: ChainBreak,
        event: &StoredEvent,
    ) -> Result<ChainBreak> {
        if broken.kind != BreakKind::Unlinked {
            return Ok(broken);
        }
        let linked: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM ledger_events WHERE hash = $1")
                .bind(&event.prev_hash)
                .fetch_optional(&self.reader)
                .await?;
        Ok(match linked {
            Some(seq) => ChainBreak {
                seq: broken.seq,
                kind: BreakKind::Reordered,
                why: format!("it links to the event now at seq {seq}: events were reordered"),
            },
            None => ChainBreak {
                seq: broken.seq,
                kind: BreakKind::Deleted,
                why: "the event it links to is gone: an event before it was deleted".into(),
            },
        })
    }

    pub(super) async fn check_checkpoint(
        &self,
        head: &ChainHead,
        seq: i64,
        hash: &str,
    ) -> Result<Option<ChainBreak>> {
        if seq > head.seq {
            return Ok(Some(ChainBreak {
                seq,
                kind: BreakKind::Truncated,
                why: format!("the checkpoint names seq {seq} but the chain ends at seq {}: its tail was removed", head.seq),
            }));
        }
        let held: Option<String> =
            sqlx::query_scalar("SELECT hash FROM ledger_events WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&self.reader)
                .await?;
        Ok((held.as_deref() != Some(hash)).then(|| ChainBreak {
            seq,
            kind: BreakKind::Rewritten,
            why: format!(
                "the checkpoint says {hash} but the chain holds {}",
                held.unwrap_or_default()
            ),
        }))
    }
}
