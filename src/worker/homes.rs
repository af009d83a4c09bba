//! Keeps current the Home of everyone who opened it in the last day: after commits (gathered
//! for `home_refresh_after`), each such Home is rendered again and republished only if it
//! changed, paced to `views.publish`'s tier.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::app::state::AppState;
use crate::domain::SlackUserId;
use crate::slack::home_tab;

/// How long after opening it a person's Home is kept current.
const KEPT_FOR: chrono::Duration = chrono::Duration::hours(24);
/// A refresh even without a commit (a proposal expiring on another replica, say).
const BACKSTOP: Duration = Duration::from_secs(60);

pub(super) async fn run(state: AppState, shutdown: CancellationToken) {
    // What this process last published for each person, by content.
    let mut published: HashMap<String, u64> = HashMap::new();
    loop {
        let woken = state.wake.notified();
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(BACKSTOP) => {}
            () = shutdown.cancelled() => return,
        }
        // A burst of commits (an incident) is one refresh.
        tokio::select! {
            () = tokio::time::sleep(state.timing.home_refresh_after) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(error) = refresh(&state, &mut published, &shutdown).await {
            tracing::warn!(%error, "could not refresh Home tabs");
        }
    }
}

async fn refresh(
    state: &AppState,
    published: &mut HashMap<String, u64>,
    shutdown: &CancellationToken,
) -> Result<(), sqlx::Error> {
    let openers = state
        .ledger
        .home_openers_since(Utc::now() - KEPT_FOR)
        .await?;
    published.retain(|user, _| openers.contains(user));
    for opener in openers {
        let Ok(user) = SlackUserId::parse(&opener) else {
            continue;
        };
        let last = published.get(&opener).copied();
        let now = home_tab::publish(state, &user, last).await;
        match now {
            Some(hash) if Some(hash) != last => {
                published.insert(opener, hash);
                tokio::select! {
                    () = tokio::time::sleep(state.timing.home_publish_every) => {}
                    () = shutdown.cancelled() => return Ok(()),
                }
            }
            _ => {}
        }
    }
    Ok(())
}
