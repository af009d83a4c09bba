//! What travels on a Socket Mode connection (Slack's "Using Socket Mode" page): `hello` when a
//! connection is ready, envelopes (`events_api`, `interactive`, `slash_commands`) that must be
//! acknowledged with their `envelope_id`, and `disconnect` with its reason.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message from Slack on a Socket Mode connection.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Hello {
        #[serde(default)]
        num_connections: Option<u32>,
    },
    Disconnect {
        #[serde(default)]
        reason: Option<String>,
    },
    EventsApi(Envelope),
    Interactive(Envelope),
    SlashCommands(Envelope),
    #[serde(other)]
    Unknown,
}

/// A payload Slack wants acknowledged.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub envelope_id: String,
    #[serde(default)]
    pub payload: Value,
    /// Whether the acknowledgement may carry an answer (a slash command's reply, a modal's
    /// `response_action`).
    #[serde(default)]
    pub accepts_response_payload: bool,
    /// Set when Slack delivers it again (not in Slack's page; its SDKs read it).
    #[serde(default)]
    pub retry_attempt: Option<u32>,
}

/// Which kind of envelope: the label of metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventsApi,
    Interactive,
    SlashCommands,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EventsApi => "events_api",
            Kind::Interactive => "interactive",
            Kind::SlashCommands => "slash_commands",
        }
    }
}

/// Why Slack closes a connection, from a `disconnect` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// `warning` (about ten seconds ahead) or `refresh_requested`: open the next connection,
    /// then let this one go.
    Refresh(String),
    /// Socket Mode was turned off in the app's settings.
    LinkDisabled,
}

impl Disconnect {
    pub fn of(reason: Option<&str>) -> Self {
        match reason {
            Some("link_disabled") => Disconnect::LinkDisabled,
            other => Disconnect::Refresh(other.unwrap_or("unstated").to_owned()),
        }
    }
}

/// The acknowledgement of an envelope, with the answer it may carry.
#[derive(Debug, Serialize)]
pub struct Ack<'a> {
    pub envelope_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_hello_and_disconnect_read_from_slacks_examples() {
        let hello: Message = serde_json::from_str(r#"{"type":"hello","connection_info":{"app_id":"A1234"},"num_connections":1,"debug_info":{"host":"applink-1","build_number":54,"approximate_connection_time":3600}}"#).unwrap();
        let envelope: Message = serde_json::from_str(r#"{"payload":{"token":"x"},"envelope_id":"dbdd0ef3-1543-4f94-bfb4-133d0e6c1545","type":"slash_commands","accepts_response_payload":true}"#).unwrap();
        let disconnect: Message = serde_json::from_str(r#"{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"wss-111.slack.com"}}"#).unwrap();
        let other: Message = serde_json::from_str(r#"{"type":"something_new"}"#).unwrap();

        assert!(matches!(
            hello,
            Message::Hello {
                num_connections: Some(1)
            }
        ));
        assert!(matches!(envelope, Message::SlashCommands(e) if e.accepts_response_payload));
        assert!(
            matches!(disconnect, Message::Disconnect { reason: Some(r) } if Disconnect::of(Some(&r)) == Disconnect::LinkDisabled)
        );
        assert!(matches!(other, Message::Unknown));
    }

    #[test]
    fn an_ack_without_an_answer_is_the_envelope_id_alone() {
        let ack = Ack {
            envelope_id: "e1",
            payload: None,
        };
        assert_eq!(
            serde_json::to_string(&ack).unwrap(),
            r#"{"envelope_id":"e1"}"#
        );
    }
}
