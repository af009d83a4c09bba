//! The hourly ledger checkpoint: written to the ledger and posted to the audit channel, so a
//! copy of the head lives outside the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::app::state::AppState;

/// Writes one checkpoint, unless another replica just did, and posts it; returns the seq
/// and hash it names.
async fn checkpoint_once(
    state: &AppState,
    every: chrono::Duration,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    let now = Utc::now();
    let cutoff = now.checked_sub_signed(every).unwrap_or(now);
    let Some((seq, hash)) = state.ledger.checkpoint_if_last_before(now, cutoff).await? else {
        return Ok(None);
    };
    tracing::info!(head_seq = seq, head_hash = %hash, "ledger checkpoint");
    if let Some(channel) = &state.slack_settings.audit_channel {
        let text = format!(
            ":closed_lock_with_key: countersign ledger checkpoint `{seq}:{hash}`. Verify with `countersign ledger verify --checkpoint {seq}:{hash}`."
        );
        if let Err(error) = state.slack.post_message(channel, &text, vec![], None).await {
            tracing::warn!(%error, "could not post the checkpoint to the audit channel");
        }
    }
    Ok(Some((seq, hash)))
}

/// When the next checkpoint is due: one interval after the chain was last checkpointed (or,
/// never checkpointed, after its first event), so a service restarted more often than the
/// interval still writes them; `None` while the ledger is empty.
fn next_due(last: Option<DateTime<Utc>>, every: chrono::Duration) -> Option<DateTime<Utc>> {
    last.map(|at| at.checked_add_signed(every).unwrap_or(at))
}

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    let every = state.timing.checkpoint_every;
    // Looked at again at least this often, so a ledger that was empty at start (or a
    // checkpoint another process wrote) is noticed within a minute.
    let recheck = every.min(Duration::from_secs(60));
    let every_signed = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::hours(1));
    loop {
        let now = Utc::now();
        let due = match state.ledger.last_checkpointed().await {
            Ok(last) => next_due(last, every_signed),
            Err(error) => {
                tracing::error!(%error, "could not read the last ledger checkpoint");
                None
            }
        };
        let wait = match due {
            Some(due) if due <= now => match checkpoint_once(&state, every_signed).await {
                // Written here or by another replica: the next one is due an interval on.
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "could not write a ledger checkpoint");
                    recheck
                }
            },
            Some(due) => (due - now).to_std().unwrap_or(recheck).min(recheck),
            None => recheck,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute)
    }

    #[test]
    fn the_next_checkpoint_is_due_one_interval_after_the_last() {
        assert_eq!(
            next_due(Some(at(30)), chrono::Duration::minutes(60)),
            Some(at(90))
        );
    }

    #[test]
    fn an_empty_ledger_needs_no_checkpoint() {
        assert_eq!(next_due(None, chrono::Duration::minutes(60)), None);
    }
}
