//! Builds requests the way Slack sends them to `/slack/interactions` and `/slack/commands`:
//! signed bodies, interaction payloads and slash-command forms.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// Fixed test signing secret (the one used in Slack's own documentation example).
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// Fixed identifiers Slack puts in every payload; tests rarely care about them.
const API_APP_ID: &str = "A0TESTAPP";
const VERIFICATION_TOKEN: &str = "deprecated-verification-token";
const TEAM_DOMAIN: &str = "countersign-test";
const TRIGGER_ID: &str = "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

/// The `X-Slack-Signature` value: `"v0=" + hex(HMAC-SHA256(secret, "v0:{timestamp}:{body}"))`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Current unix time in seconds, for `X-Slack-Request-Timestamp`.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Form body Slack sends for interactions: "payload=" + urlencoded(json)
pub fn interaction_body(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .expect("a string pair always encodes")
}

/// A block_actions payload as Slack sends it when `user_id` clicks the button `action_id`
/// ("approve"|"deny"|"retry") whose value is `value`, on the message `channel`/`message_ts`.
pub fn block_action(
    team_id: &str,
    user_id: &str,
    action_id: &str,
    value: &str,
    channel: &str,
    message_ts: &str,
    response_url: &str,
) -> Value {
    let action = json!({
        "type": "button",
        "action_id": action_id,
        "block_id": "actions",
        "value": value,
        "text": { "type": "plain_text", "text": action_id, "emoji": true },
        "action_ts": format!("{}.000200", now())
    });
    clicked(team_id, user_id, action, channel, message_ts, response_url)
}

/// An option chosen from a message's overflow menu (`action_id`), whose value is `value`.
pub fn menu_choice(
    team_id: &str,
    user_id: &str,
    action_id: &str,
    value: &str,
    channel: &str,
    message_ts: &str,
    response_url: &str,
) -> Value {
    let action = json!({
        "type": "overflow",
        "action_id": action_id,
        "block_id": "row",
        "selected_option": { "text": { "type": "plain_text", "text": value, "emoji": true }, "value": value },
        "action_ts": format!("{}.000200", now())
    });
    clicked(team_id, user_id, action, channel, message_ts, response_url)
}

fn clicked(
    team_id: &str,
    user_id: &str,
    action: Value,
    channel: &str,
    message_ts: &str,
    response_url: &str,
) -> Value {
    json!({
        "type": "block_actions",
        "team": { "id": team_id, "domain": TEAM_DOMAIN },
        "user": user(team_id, user_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": TRIGGER_ID,
        "response_url": response_url,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": false
        },
        "channel": { "id": channel, "name": "approvals" },
        "message": {
            "type": "message",
            "ts": message_ts,
            "user": "UBOT",
            "bot_id": "BBOT",
            "text": "approval request"
        },
        "state": { "values": {} },
        "actions": [action]
    })
}

/// A view_submission payload for a modal whose inputs hold `values`
/// (`(block_id, action_id, value)` triples, all plain-text inputs).
pub fn view_submission(
    team_id: &str,
    user_id: &str,
    callback_id: &str,
    private_metadata: &str,
    values: &[(&str, &str, &str)],
) -> Value {
    let mut state = serde_json::Map::new();
    for (block_id, action_id, value) in values {
        let block = state
            .entry(block_id.to_string())
            .or_insert_with(|| json!({}));
        block[*action_id] = json!({ "type": "plain_text_input", "value": value });
    }
    json!({
        "type": "view_submission",
        "team": { "id": team_id, "domain": TEAM_DOMAIN },
        "user": user(team_id, user_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": TRIGGER_ID,
        // slack-morphism's SlackStatefulView requires id, team_id, hash, title and blocks.
        "view": {
            "id": "V0TESTVIEW",
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "hash": "1700000000.abcdef",
            "title": { "type": "plain_text", "text": "countersign" },
            "blocks": [],
            "state": { "values": state }
        }
    })
}

/// Form body of a slash command as Slack sends it, urlencoded.
pub fn slash_command_body(
    team_id: &str,
    user_id: &str,
    command: &str,
    text: &str,
    channel_id: &str,
    response_url: &str,
) -> String {
    serde_urlencoded::to_string([
        ("token", VERIFICATION_TOKEN),
        ("team_id", team_id),
        ("team_domain", TEAM_DOMAIN),
        ("channel_id", channel_id),
        ("channel_name", "approvals"),
        ("user_id", user_id),
        ("user_name", user_id),
        ("command", command),
        ("text", text),
        ("api_app_id", API_APP_ID),
        ("response_url", response_url),
        ("trigger_id", TRIGGER_ID),
    ])
    .expect("string pairs always encode")
}

fn user(team_id: &str, user_id: &str) -> Value {
    json!({ "id": user_id, "username": user_id, "name": user_id, "team_id": team_id })
}
