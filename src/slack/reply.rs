//! Answers only the person who acted sees: an ephemeral message, sent without holding up
//! Slack's acknowledgement.

use crate::app::AppState;
use crate::domain::SlackUserId;

/// Tells the clicker why nothing happened, without holding up Slack's answer.
pub(super) fn tell(state: &AppState, channel: Option<&str>, user: &SlackUserId, text: String) {
    let Some(channel) = channel.map(str::to_owned) else {
        return;
    };
    let (slack, user) = (state.slack.clone(), user.clone());
    tokio::spawn(async move {
        if let Err(error) = slack.post_ephemeral(&channel, &user, &text).await {
            tracing::warn!(%error, "could not send an ephemeral answer");
        }
    });
}
