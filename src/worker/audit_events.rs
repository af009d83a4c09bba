//! Polls 1Password's Events API every `EVENTS_INTERVAL` when `OP_EVENTS_TOKEN` is set, and
//! announces drift (the sweep's and its own) with who made it. Each replica competes for the
//! poll's lease; only the holder reads and announces.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::drift::announce;
use crate::app::attribution::{self, Polled, LEASE};
use crate::app::state::AppState;
use crate::onepassword::events::EventsError;

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(events) = state.audit_events.clone() else {
        return;
    };
    let every = state.timing.events_every.max(Duration::from_millis(50));
    let holder = format!("{:032x}", rand::random::<u128>());
    let lease =
        chrono::Duration::from_std(every.mul_f64(1.5)).unwrap_or(chrono::Duration::minutes(2));
    // The first poll reads from one interval back: changes since countersign last ran are
    // the sweep's to find.
    let start = Utc::now() - chrono::Duration::from_std(every).unwrap_or_default();
    let mut token_ok = false;
    loop {
        let mut pause = every;
        if !token_ok {
            match events.check_token().await {
                Ok(()) => {
                    token_ok = true;
                    tracing::info!("1Password Events API: the token reads audit events");
                }
                Err(error @ (EventsError::NoAuditEvents(_) | EventsError::Unauthorized)) => {
                    tracing::error!(%error, "1Password Events API: drift will not be attributed until the token is fixed");
                }
                Err(error) => {
                    tracing::warn!(%error, "1Password Events API: could not check the token")
                }
            }
        }
        let until = Utc::now()
            .checked_add_signed(lease)
            .unwrap_or_else(Utc::now);
        let polled = if token_ok {
            attribution::poll(&state, &events, &holder, until, start).await
        } else {
            take_lease(&state, &holder, until).await
        };
        match polled {
            Ok(Polled::NotOurs) => {}
            Ok(Polled::RateLimited(after)) => {
                tracing::warn!(
                    ?after,
                    "1Password Events API: rate limited; waiting as asked"
                );
                pause = after.min(state.timing.retry_after_cap).max(every);
                announce_drift(&state, &holder).await;
            }
            Ok(read) => {
                tracing::debug!(?read, "audit events read");
                announce_drift(&state, &holder).await;
            }
            Err(error) => {
                tracing::warn!(%error, "1Password Events API poll failed; trying again next interval");
                announce_drift(&state, &holder).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Holds the poll's lease without polling (the token is not usable), so drift is still
/// announced by one replica.
async fn take_lease(
    state: &AppState,
    holder: &str,
    until: chrono::DateTime<Utc>,
) -> Result<Polled, attribution::PollError> {
    let mut tx = state.ledger.begin().await?;
    let ours = tx.take_lease(LEASE, holder, until, Utc::now()).await?;
    tx.commit().await?;
    Ok(if ours {
        Polled::Read {
            events: 0,
            recorded: 0,
        }
    } else {
        Polled::NotOurs
    })
}

async fn announce_drift(state: &AppState, holder: &str) {
    if let Err(error) = announce(state, LEASE, holder).await {
        tracing::error!(%error, "could not announce drift");
    }
}
