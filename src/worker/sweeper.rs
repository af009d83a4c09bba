//! Expires pending proposals whose time ran out, so their cards lose their buttons even when
//! nobody clicks.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::decisions;
use crate::state::AppState;

const EVERY: Duration = Duration::from_secs(15);

/// Expires every overdue proposal once; returns how many it expired.
pub async fn sweep_once(state: &AppState) -> Result<usize, sqlx::Error> {
    let mut expired = 0;
    for id in state.ledger.expired_pending(Utc::now()).await? {
        match decisions::expire(state, id).await {
            Ok(true) => expired += 1,
            Ok(false) => {}
            Err(error) => tracing::error!(proposal_id = %id, %error, "could not expire"),
        }
    }
    Ok(expired)
}

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        if let Err(error) = sweep_once(&state).await {
            tracing::error!(%error, "expiry sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
