//! The hourly ledger checkpoint: written to the ledger and posted to the audit channel, so a
//! copy of the head lives outside the database.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Writes one checkpoint and posts it; returns the seq and hash it names.
async fn checkpoint_once(state: &AppState) -> Result<(i64, String), sqlx::Error> {
    let (seq, hash) = state.ledger.checkpoint(Utc::now()).await?;
    tracing::info!(head_seq = seq, head_hash = %hash, "ledger checkpoint");
    if let Some(channel) = &state.slack_settings.audit_channel {
        let text = format!(
            ":closed_lock_with_key: countersign ledger checkpoint `{seq}:{hash}`. Verify with `countersign ledger verify --checkpoint {seq}:{hash}`."
        );
        if let Err(error) = state.slack.post_message(channel, &text, vec![], None).await {
            tracing::warn!(%error, "could not post the checkpoint to the audit channel");
        }
    }
    Ok((seq, hash))
}

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(state.timing.checkpoint_every) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(error) = checkpoint_once(&state).await {
            tracing::error!(%error, "could not write a ledger checkpoint");
        }
    }
}
