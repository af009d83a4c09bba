//! Runs the drift sweep every `DRIFT_INTERVAL` (not at all when it is 0), and announces what
//! it found in Slack. Each replica competes for the sweep's lease; only the holder sweeps and
//! announces.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::app::drift_sweep::{self, Swept, LEASE};
use crate::app::state::AppState;
use crate::domain::SlackRef;

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(every) = state.timing.drift_every else {
        return;
    };
    // Who this replica is, for the lease; held across one and a half intervals, so a replica
    // that stops is replaced after that.
    let holder = format!("{:032x}", rand::random::<u128>());
    let lease =
        chrono::Duration::from_std(every.mul_f64(1.5)).unwrap_or(chrono::Duration::minutes(15));
    loop {
        let until = Utc::now()
            .checked_add_signed(lease)
            .unwrap_or_else(Utc::now);
        match drift_sweep::sweep(&state, &holder, until).await {
            Ok(Swept::NotOurs) => {}
            Ok(swept) => {
                tracing::debug!(?swept, "drift sweep");
                // With the Events API on, its poller announces drift (naming who made it).
                if state.audit_events.is_none() {
                    if let Err(error) = announce(&state, LEASE, &holder).await {
                        tracing::error!(%error, "could not announce drift");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "drift sweep failed; trying again next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every.max(Duration::from_millis(50))) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Announces drifts not yet announced: urgent ones in the approvals channel with a button to
/// propose the suspension again, the rest in the audit channel when there is one. Each is
/// marked announced once Slack took it. Only while `holder` holds the sweep's lease: a
/// replica that lost it (a slow Slack, many drifts) leaves the rest to the new holder
/// instead of posting them a second time.
pub(super) async fn announce(
    state: &AppState,
    lease: &str,
    holder: &str,
) -> Result<usize, sqlx::Error> {
    let mut announced = 0;
    for drift in state.ledger.unannounced_drifts().await? {
        let mut tx = state.ledger.begin().await?;
        let ours = tx.holds_named_lease(lease, holder, Utc::now()).await?;
        drop(tx);
        if !ours {
            break;
        }
        let event = state.ledger.drift_event(drift.seq).await?;
        let message = match (drift.urgent, &state.slack_settings.audit_channel) {
            (true, _) => Some((
                state.slack_settings.channel.clone(),
                crate::slack::drift::urgent(&drift, event.as_ref()),
            )),
            (false, Some(audit)) => Some((audit.clone(), crate::slack::drift::audit(&drift))),
            // Nowhere to announce it: it stays evidence in the ledger.
            (false, None) => None,
        };
        let posted = match (message, &drift.announced_in) {
            (None, _) => Ok(None),
            // Announced before its actor was known: the message says who, now.
            (Some((_, card)), Some(at)) => state
                .slack
                .update_message(&at.channel, &at.ts, &card.text, card.blocks)
                .await
                .map(|()| None),
            (Some((channel, card)), None) => state
                .slack
                .post_message(&channel, &card.text, card.blocks, None)
                .await
                .map(|ts| Some(SlackRef { channel, ts })),
        };
        match posted {
            Ok(message) => {
                let mut tx = state.ledger.begin().await?;
                tx.mark_drift_announced(drift.seq, message.as_ref(), Utc::now())
                    .await?;
                tx.commit().await?;
                announced += 1;
            }
            Err(error) => {
                tracing::warn!(%error, seq = drift.seq, "could not announce a drift; will try again");
                break;
            }
        }
    }
    Ok(announced)
}
