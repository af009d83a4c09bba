//! The drift sweep (DESIGN §8): list every user, compare each state with what countersign last
//! recorded or observed, and record a change no executed proposal explains as evidence —
//! never as an action. One replica sweeps at a time, under a lease in the ledger.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::state::AppState;
use crate::domain::drift::{changes, Seen};
use crate::domain::{Action, Proposal, UserState};
use crate::ledger::EventKind;
use crate::onepassword::OpError;

/// The sweep's lease: one replica sweeps, and only its holder announces.
pub const LEASE: &str = "drift";

/// What one sweep did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    /// Another replica holds the sweep's lease.
    NotOurs,
    /// The first sweep on this ledger: the states it saw are the baseline.
    Baseline { users: usize },
    /// Drifts recorded.
    Compared { users: usize, drifts: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("could not list 1Password's users: {0}")]
    OnePassword(#[from] OpError),
    #[error("the ledger could not record the sweep: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A digest of the states seen, so the baseline is checkable without holding the list.
fn digest(seen: &[Seen]) -> String {
    let mut lines: Vec<String> = seen
        .iter()
        .map(|s| format!("{}={}", s.user_id, s.state.as_str()))
        .collect();
    lines.sort();
    hex::encode(Sha256::digest(lines.join("\n").as_bytes()))
}

/// The drift payload's account of countersign's last executed proposal about the user.
pub(crate) fn last_proposal(proposal: &Proposal) -> Value {
    json!({
        "id": proposal.id.to_string(),
        "action": proposal.action.as_str(),
        "outcome": proposal.execution.outcome.map(|o| o.as_str()),
        "executed_at": proposal.execution.at.map(crate::ledger::timestamp),
    })
}

/// One sweep, by `holder` (this replica), whose lease lasts until `lease_until`.
pub async fn sweep(
    state: &AppState,
    holder: &str,
    lease_until: DateTime<Utc>,
) -> Result<Swept, SweepError> {
    // Only the lease's holder lists the account; the others leave 1Password alone.
    let mut tx = state.ledger.begin().await?;
    let ours = tx
        .take_lease(LEASE, holder, lease_until, Utc::now())
        .await?;
    tx.commit().await?;
    if !ours {
        return Ok(Swept::NotOurs);
    }
    // Records countersign writes after this instant are newer than the listing.
    let listed_at = Utc::now();
    let users = state.onepassword.refresh_directory().await?;
    let seen: Vec<Seen> = users
        .into_iter()
        .filter_map(|u| {
            Some(Seen {
                user_id: u.id?,
                email: u.email,
                state: u.state,
            })
        })
        .collect();
    let now = Utc::now();
    // Compared and recorded in one transaction: what another sweep recorded meanwhile is
    // seen, so a change is recorded once however many sweep.
    let mut tx = state.ledger.begin().await?;
    // A listing that outlived the lease may be older than another replica's: drop it.
    if !tx.holds_named_lease(LEASE, holder, now).await? {
        return Ok(Swept::NotOurs);
    }
    if !tx.has_drift_baseline().await? {
        tx.record_seen(&seen, listed_at).await?;
        let payload = json!({"users": seen.len(), "digest": digest(&seen)});
        tx.append(None, EventKind::DriftBaseline, "system", payload, now)
            .await?;
        tx.commit().await?;
        tracing::info!(users = seen.len(), "drift baseline recorded");
        return Ok(Swept::Baseline { users: seen.len() });
    }
    let known = tx.known_states().await?;
    let in_hand = tx.users_in_hand().await?;
    let recorded = tx.recorded_since(listed_at).await?;
    let drifts = changes(&known, &seen, &in_hand, &recorded);
    for drift in &drifts {
        let last = tx.last_executed_for(&drift.user_id).await?;
        // A reactivation that undid countersign's own suspension is urgent.
        let urgent = drift.to == UserState::Active
            && last.as_ref().is_some_and(|p| p.action == Action::Suspend);
        let payload = json!({
            "user_id": drift.user_id, "email": drift.email,
            "from": drift.from.as_str(), "to": drift.to.as_str(),
            "first_seen_at": crate::ledger::timestamp(now),
            "last_proposal": last.as_ref().map(last_proposal),
        });
        let seq = tx
            .append(None, EventKind::DriftDetected, "system", payload, now)
            .await?;
        tx.insert_drift(seq, drift, urgent, now).await?;
        tracing::warn!(user_id = %drift.user_id, direction = drift.direction(), urgent, "drift detected");
    }
    // What the listing shows becomes the record, except for users countersign is acting on
    // (their record comes from the execution) and records newer than the listing.
    let settled: Vec<Seen> = seen
        .iter()
        .filter(|s| !in_hand.contains_key(&s.user_id) && !recorded.contains(&s.user_id))
        .cloned()
        .collect();
    tx.record_seen(&settled, listed_at).await?;
    tx.commit().await?;
    Ok(Swept::Compared {
        users: seen.len(),
        drifts: drifts.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_digest_does_not_depend_on_listing_order() {
        let a = Seen {
            user_id: "A".into(),
            email: None,
            state: UserState::Active,
        };
        let b = Seen {
            user_id: "B".into(),
            email: None,
            state: UserState::Suspended,
        };
        assert_eq!(digest(&[a.clone(), b.clone()]), digest(&[b, a]));
    }
}
