//! Attribution from 1Password's Events API (issue 24): every audit event about a user's
//! suspension or reactivation becomes evidence — the confirmation of countersign's own
//! execution, the actor of a drift the sweep already recorded, or a drift of its own that
//! names who did it. One replica polls at a time (a lease), from the cursor the ledger keeps,
//! and each page's records and the cursor after it commit together: nothing is read twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::state::AppState;
use crate::domain::attribution::{is_own_execution, state_after, Actor};
use crate::domain::drift::Drift;
use crate::domain::{Action, UserState};
use crate::ledger::{EventKind, TakenAs, Tx};
use crate::onepassword::events::{user_state_changes, AuditEvent, AuditEvents, EventsError, From};

/// The poll's lease: one replica reads the Events API at a time.
pub const LEASE: &str = "audit-events";

/// How long before an audit event a drift may have been noticed and still be its change (a
/// sweep that ran before the poll saw it first).
fn drift_window() -> chrono::Duration {
    chrono::Duration::hours(24)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// Another replica holds the poll's lease.
    NotOurs,
    /// Pages read; audit events about users' states taken as evidence.
    Read { events: usize, recorded: usize },
    /// 1Password asked us to wait this long (429).
    RateLimited(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error("the ledger could not record the audit events: {0}")]
    Storage(#[from] sqlx::Error),
}

fn actor_of(event: &AuditEvent) -> Actor {
    let details = event.actor_details.clone().unwrap_or_default();
    let location = event.location.as_ref().map(|l| {
        [&l.city, &l.region, &l.country]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    });
    Actor {
        uuid: details.uuid.or_else(|| event.actor_uuid.clone()),
        name: details.name.filter(|n| !n.is_empty()),
        email: details.email.filter(|e| !e.is_empty()),
        ip: event.session.as_ref().and_then(|s| s.ip.clone()),
        location: location.filter(|l| !l.is_empty()),
        at: event.timestamp,
    }
}

/// Polls from the ledger's cursor (or from `start` on the first poll) until 1Password has no
/// more, as `holder` whose lease lasts until `lease_until`.
pub async fn poll(
    state: &AppState,
    events: &AuditEvents,
    holder: &str,
    lease_until: DateTime<Utc>,
    start: DateTime<Utc>,
) -> Result<Polled, PollError> {
    let mut tx = state.ledger.begin().await?;
    if !tx
        .take_lease(LEASE, holder, lease_until, Utc::now())
        .await?
    {
        return Ok(Polled::NotOurs);
    }
    let cursor = tx.audit_cursor().await?;
    tx.commit().await?;
    let mut from = cursor.map_or(From::Start(start), From::Cursor);
    let (mut read, mut recorded) = (0, 0);
    loop {
        let page = match events.page(&from).await {
            Ok(page) => page,
            Err(EventsError::RateLimited { retry_after }) => {
                return Ok(Polled::RateLimited(
                    retry_after.unwrap_or(Duration::from_secs(60)),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let changes = user_state_changes(&page.items);
        let now = Utc::now();
        let mut tx = state.ledger.begin().await?;
        // A poll that outlived its lease leaves the page to the replica that holds it now.
        if !tx.holds_named_lease(LEASE, holder, now).await? {
            return Ok(Polled::NotOurs);
        }
        for event in &changes {
            if attribute(&mut tx, event, now).await? {
                recorded += 1;
            }
        }
        tx.save_audit_cursor(&page.cursor, now).await?;
        tx.commit().await?;
        read += changes.len();
        if !page.has_more {
            break;
        }
        from = From::Cursor(page.cursor);
    }
    if recorded > 0 {
        state.wake_worker();
    }
    Ok(Polled::Read {
        events: read,
        recorded,
    })
}

/// Takes one audit event as evidence; false when it was read before or told nothing new.
async fn attribute(
    tx: &mut Tx,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (Some(user_id), Some(to)) = (event.object_uuid.as_deref(), state_after(&event.action))
    else {
        return Ok(false);
    };
    if tx.audit_event_read(&event.uuid).await? {
        return Ok(false);
    }
    let actor = actor_of(event);
    let audit = json!({
        "uuid": event.uuid, "action": event.action, "at": crate::ledger::timestamp(event.timestamp),
    });
    // Countersign's own execution: a confirmation, never drift.
    let own = tx
        .unconfirmed_executions(user_id)
        .await?
        .into_iter()
        .find(|p| is_own_execution(p, to, event.timestamp));
    if let Some(proposal) = own {
        let payload = json!({"audit_event": audit, "actor": actor, "state": to.as_str()});
        tx.append(
            Some(proposal.id),
            EventKind::ExecutionConfirmed,
            &actor.ledger_actor(),
            payload,
            now,
        )
        .await?;
        let taken = TakenAs::Confirmation(&proposal);
        tx.record_audit_event(
            &event.uuid,
            user_id,
            &event.action,
            event.timestamp,
            taken,
            now,
        )
        .await?;
        return Ok(true);
    }
    // A drift the sweep recorded first: this names who made it.
    let since = event.timestamp - drift_window();
    if let Some(seq) = tx.unattributed_drift(user_id, to, since).await? {
        let payload = json!({"drift_seq": seq, "audit_event": audit, "actor": actor});
        tx.append(
            None,
            EventKind::DriftAttributed,
            &actor.ledger_actor(),
            payload,
            now,
        )
        .await?;
        tx.attribute_drift(seq, &actor, now).await?;
        tx.record_audit_event(
            &event.uuid,
            user_id,
            &event.action,
            event.timestamp,
            TakenAs::Drift(seq),
            now,
        )
        .await?;
        return Ok(true);
    }
    let known = tx.known_state(user_id).await?;
    if known == Some(to) {
        // Countersign's records already show this state (a listing after the change).
        tx.record_audit_event(
            &event.uuid,
            user_id,
            &event.action,
            event.timestamp,
            TakenAs::Known,
            now,
        )
        .await?;
        return Ok(false);
    }
    // A change nobody recorded yet: a drift, with its actor, before any sweep sees it.
    let email = event.object_details.as_ref().and_then(|d| d.email.clone());
    let drift = Drift {
        user_id: user_id.to_owned(),
        email: email.clone(),
        from: known.unwrap_or(match to {
            UserState::Active => UserState::Suspended,
            _ => UserState::Active,
        }),
        to,
    };
    let last = tx.last_executed_for(user_id).await?;
    let urgent =
        to == UserState::Active && last.as_ref().is_some_and(|p| p.action == Action::Suspend);
    let payload = json!({
        "user_id": drift.user_id, "email": drift.email,
        "from": drift.from.as_str(), "to": drift.to.as_str(),
        "first_seen_at": crate::ledger::timestamp(now),
        "last_proposal": last.as_ref().map(crate::app::drift_sweep::last_proposal),
        "audit_event": audit, "actor": actor,
    });
    let seq = tx
        .append(
            None,
            EventKind::DriftDetected,
            &actor.ledger_actor(),
            payload,
            now,
        )
        .await?;
    tx.insert_drift(seq, &drift, urgent, now).await?;
    tx.attribute_drift(seq, &actor, now).await?;
    tx.record_observed_state(user_id, email.as_deref(), to, &event.uuid, now)
        .await?;
    tx.record_audit_event(
        &event.uuid,
        user_id,
        &event.action,
        event.timestamp,
        TakenAs::Drift(seq),
        now,
    )
    .await?;
    tracing::warn!(user_id, direction = drift.direction(), urgent, actor = %actor.who(), "drift reported by 1Password's audit events");
    Ok(true)
}
