//! Publishing a person's Home tab (`views.publish`): read who they are and what they may
//! decide, render, and publish — unless it is what was published last.

use std::hash::{Hash, Hasher};

use crate::app::home;
use crate::app::state::AppState;
use crate::domain::SlackUserId;

/// Publishes `user`'s Home as it stands now, unless its content hashes to `unless` (what was
/// published last). Returns the hash of what is published now, or `None` when nothing could be.
pub async fn publish(state: &AppState, user: &SlackUserId, unless: Option<u64>) -> Option<u64> {
    let decider = match state.directory.decider(&state.policy, user).await {
        Ok(decider) => decider,
        Err(error) => {
            tracing::warn!(%error, %user, "could not read a Home's viewer from Slack");
            return None;
        }
    };
    let home = match home::of(state, &decider).await {
        Ok(home) => home,
        Err(error) => {
            tracing::error!(%error, "could not read the ledger for a Home");
            return None;
        }
    };
    let blocks = super::home::render(&home, &state.slack_settings.channel);
    let hash = content_hash(&serde_json::to_string(&blocks).unwrap_or_default());
    if unless == Some(hash) {
        return Some(hash);
    }
    match state.slack.publish_home(user, blocks).await {
        Ok(()) => Some(hash),
        Err(error) => {
            tracing::warn!(%error, %user, "could not publish a Home");
            None
        }
    }
}

fn content_hash(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}
