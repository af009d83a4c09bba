//! The parts of Slack's interaction payloads countersign reads. Parsed leniently (unknown
//! fields ignored) because Slack adds fields freely.

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interaction {
    BlockActions(BlockActions),
    ViewSubmission(ViewSubmission),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct Team {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct BlockActions {
    pub team: Option<Team>,
    pub user: User,
    pub trigger_id: Option<String>,
    pub channel: Option<Channel>,
    pub container: Option<Container>,
    #[serde(default)]
    pub actions: Vec<ActionClicked>,
}

impl BlockActions {
    /// Whether the click came from a view (the Home tab), not from a card in a channel.
    pub fn clicked_in_view(&self) -> bool {
        self.container
            .as_ref()
            .is_some_and(|c| c.kind.as_deref() == Some("view"))
    }

    /// The clicked card, when the click was on a message.
    pub fn card(&self) -> Option<crate::domain::SlackRef> {
        let container = self.container.as_ref()?;
        Some(crate::domain::SlackRef {
            channel: self.channel_id()?.to_owned(),
            ts: container.message_ts.clone()?,
        })
    }

    /// The channel the clicked card is in, for ephemeral answers.
    pub fn channel_id(&self) -> Option<&str> {
        self.channel.as_ref().map(|c| c.id.as_str()).or_else(|| {
            self.container
                .as_ref()
                .and_then(|c| c.channel_id.as_deref())
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct Channel {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Container {
    /// `message` for a card, `view` for the Home tab (or a modal).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub channel_id: Option<String>,
    /// The clicked message's ts, for a card.
    #[serde(default)]
    pub message_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActionClicked {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
    /// The option chosen in a menu (an incident row's ⋯).
    #[serde(default)]
    pub selected_option: Option<SelectedOption>,
}

#[derive(Debug, Deserialize)]
pub struct SelectedOption {
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct ViewSubmission {
    pub team: Option<Team>,
    pub user: User,
    pub view: View,
}

#[derive(Debug, Deserialize)]
pub struct View {
    #[serde(default)]
    pub callback_id: Option<String>,
    #[serde(default)]
    pub private_metadata: Option<String>,
    #[serde(default)]
    pub state: Option<ViewState>,
}

#[derive(Debug, Deserialize)]
pub struct ViewState {
    #[serde(default)]
    pub values: HashMap<String, HashMap<String, InputValue>>,
}

#[derive(Debug, Deserialize)]
pub struct InputValue {
    #[serde(default)]
    pub value: Option<String>,
}

impl View {
    pub fn input(&self, block_id: &str, action_id: &str) -> Option<&str> {
        self.state
            .as_ref()?
            .values
            .get(block_id)?
            .get(action_id)?
            .value
            .as_deref()
    }
}

impl Interaction {
    pub fn team_id(&self) -> Option<&str> {
        match self {
            Interaction::BlockActions(a) => a.team.as_ref().map(|t| t.id.as_str()),
            Interaction::ViewSubmission(v) => v.team.as_ref().map(|t| t.id.as_str()),
            Interaction::Other => None,
        }
    }
}
