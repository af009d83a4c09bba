//! Who clicked: the Slack user as a `Decider`, read fresh enough from Slack, or the answer
//! the clicker gets when Slack could not say (fail closed).

use crate::app::state::AppState;
use crate::domain::{Decider, SlackUserId};

/// The clicker as a decider, or what to tell them when their profile could not be read.
pub(super) async fn resolve_decider(
    state: &AppState,
    user: &SlackUserId,
) -> Result<Decider, String> {
    state
        .directory
        .decider(&state.policy, user)
        .await
        .map_err(|error| {
            tracing::warn!(%error, user = %user, "could not read the clicker from Slack");
            "countersign could not read your Slack profile, so it refused (fail closed). Try again."
                .to_owned()
        })
}
