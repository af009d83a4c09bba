//! The hourly ledger checkpoint: written to the ledger and posted to the audit channel, so a
//! copy of the head lives outside the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
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

/// When the next checkpoint is due: the last one's time plus the interval, so a service
/// restarted more often than the interval still writes them; at once when there is none yet
/// but there are events to name; `None` while the ledger is empty.
fn next_due(
    last: Option<DateTime<Utc>>,
    head_seq: i64,
    every: chrono::Duration,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match last {
        Some(at) => Some(at.checked_add_signed(every).unwrap_or(at)),
        None if head_seq > 0 => Some(now),
        None => None,
    }
}

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    let every = state.timing.checkpoint_every;
    // Looked at again at least this often, so a ledger that was empty at start (or a
    // checkpoint another process wrote) is noticed within a minute.
    let recheck = every.min(Duration::from_secs(60));
    loop {
        let now = Utc::now();
        let due = match state.ledger.last_checkpoint().await {
            Ok((last, head)) => next_due(
                last,
                head,
                chrono::Duration::from_std(every).unwrap_or(chrono::Duration::hours(1)),
                now,
            ),
            Err(error) => {
                tracing::error!(%error, "could not read the last ledger checkpoint");
                None
            }
        };
        let wait = match due {
            Some(due) if due <= now => match checkpoint_once(&state).await {
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
    fn a_checkpoint_older_than_the_interval_is_due_at_once() {
        let due = next_due(Some(at(0)), 10, chrono::Duration::minutes(60), at(90));
        assert!(due.is_some_and(|due| due <= at(90)));
    }

    #[test]
    fn a_recent_checkpoint_makes_the_next_due_one_interval_after_it() {
        let due = next_due(Some(at(30)), 10, chrono::Duration::minutes(60), at(40));
        assert_eq!(due, Some(at(90)));
    }

    #[test]
    fn a_ledger_with_events_and_no_checkpoint_is_due_at_once() {
        assert_eq!(
            next_due(None, 3, chrono::Duration::minutes(60), at(5)),
            Some(at(5))
        );
    }

    #[test]
    fn an_empty_ledger_needs_no_checkpoint() {
        assert_eq!(
            next_due(None, 0, chrono::Duration::minutes(60), at(5)),
            None
        );
    }
}
