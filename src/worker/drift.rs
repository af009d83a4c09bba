//! Runs the drift sweep every `DRIFT_INTERVAL` (not at all when it is 0), and announces what
//! it found. Each replica competes for the sweep's lease; only the holder sweeps.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::drift::{self, Swept};
use crate::state::AppState;

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
        match drift::sweep(&state, &holder, until).await {
            Ok(Swept::NotOurs) => {}
            Ok(swept) => {
                tracing::debug!(?swept, "drift sweep");
                if let Err(error) = drift::announce(&state, &holder).await {
                    tracing::error!(%error, "could not announce drift");
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
