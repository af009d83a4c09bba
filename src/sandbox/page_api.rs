//! The sandbox page's backend: its state (the channel, ephemerals, modals, Home tabs, the
//! 1Password directory) and the acts it sends to the bot exactly as Slack would — signed
//! HTTP requests, or envelopes on the bot's Socket Mode WebSocket.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::onepassword::{ConsoleActor, FakeOnePassword};
use super::seeds::{seed_users, SLACK_USERS};
use super::signing;
use super::slack::FakeSlack;
use super::{CHANNEL, TEAM};
use crate::app::enrollment;
use crate::app::relying_party::Passkeys;
use crate::domain::SlackUserId;
use crate::ledger::Ledger;

/// What the page's backend needs: the stand-ins, the bot's address and secrets, and which
/// Slack user opened which modal.
pub(super) struct Sandbox {
    pub(super) slack: FakeSlack,
    pub(super) op: FakeOnePassword,
    pub(super) http: reqwest::Client,
    pub(super) bot: String,
    pub(super) signing_secret: String,
    pub(super) token: String,
    /// Slack's requests go to the bot over Socket Mode (the stand-in's WebSockets), not HTTP.
    pub(super) socket_mode: bool,
    /// The printed way to suspend as a SOAR's 1Password integration would.
    pub(super) gateway_example: String,
    /// The ledger and relying party, for the operator's passkey invitations.
    pub(super) ledger: Ledger,
    pub(super) passkeys: Passkeys,
    pub(super) triggers: Mutex<HashMap<String, String>>,
    pub(super) submitted: Mutex<HashSet<String>>,
    pub(super) answers: Mutex<Vec<(String, String)>>,
}

pub(super) type Shared = Arc<Sandbox>;

pub(super) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

pub(super) fn routes(sandbox: Shared) -> Router {
    Router::new()
        .route(
            "/sandbox",
            get(|| async { Html(include_str!("page.html")) }),
        )
        .route("/sandbox/api/state", get(state))
        .route("/sandbox/api/click", post(click))
        .route("/sandbox/api/view", post(submit_view))
        .route("/sandbox/api/propose", post(propose))
        .route("/sandbox/api/command", post(command))
        .route("/sandbox/api/home", post(open_home))
        .route("/sandbox/api/console", post(console))
        .route("/sandbox/api/invite", post(invite))
        .route("/sandbox/api/wave", post(wave))
        .with_state(sandbox)
}

fn text(value: &Option<String>) -> Value {
    json!(value.clone().unwrap_or_default())
}

async fn state(State(sandbox): State<Shared>) -> Json<Value> {
    let slack = &sandbox.slack;
    let users: Vec<Value> = SLACK_USERS
        .iter()
        .map(|(id, name, email, approver)| json!({"id": id, "name": name, "email": email, "approver": approver}))
        .collect();
    let onepassword: Vec<Value> = seed_users()
        .iter()
        .map(|u| {
            json!({"id": u.id, "email": u.email, "display_name": u.display_name, "state": sandbox.op.user_state(&u.id)})
        })
        .collect();
    let messages: Vec<Value> = slack
        .top_level_messages()
        .into_iter()
        .filter(|m| m.channel == CHANNEL)
        .map(|m| {
            let replies: Vec<Value> = slack
                .thread_replies(&m.ts)
                .into_iter()
                .map(|r| json!({"ts": r.ts, "text": text(&r.text), "blocks": r.blocks}))
                .collect();
            json!({"ts": m.ts, "text": text(&m.text), "blocks": m.blocks, "replies": replies})
        })
        .collect();
    let ephemerals: Vec<Value> = slack
        .ephemerals()
        .into_iter()
        .map(|c| json!({"user": c.params["user"], "text": c.params["text"]}))
        .collect();
    let triggers = sandbox.triggers.lock().expect("sandbox lock").clone();
    let submitted = sandbox.submitted.lock().expect("sandbox lock").clone();
    let views: Vec<Value> = slack
        .views()
        .into_iter()
        .filter(|v| !submitted.contains(&v.id))
        .filter_map(|v| {
            triggers
                .get(&v.trigger_id)
                .map(|user| json!({"id": v.id, "user": user, "view": v.view}))
        })
        .collect();
    let mut answers: Vec<Value> = sandbox
        .answers
        .lock()
        .expect("sandbox lock")
        .iter()
        .map(|(user, text)| json!({"user": user, "text": text}))
        .collect();
    for (id, ..) in SLACK_USERS {
        for response in slack.responses(&format!("command-{id}")) {
            answers.push(json!({"user": id, "text": response["text"]}));
        }
    }
    let homes: serde_json::Map<String, Value> = SLACK_USERS
        .iter()
        .filter_map(|(id, ..)| Some((id.to_string(), slack.home_of(id)?["blocks"].clone())))
        .collect();
    Json(json!({
        "channel": CHANNEL, "users": users, "onepassword": onepassword, "messages": messages,
        "ephemerals": ephemerals, "views": views, "answers": answers,
        "gateway_example": sandbox.gateway_example,
        "homes": homes,
    }))
}

impl Sandbox {
    /// Sends a form to the bot as Slack does: signed with the app's signing secret to `path`,
    /// or in Socket Mode as an envelope on the bot's own WebSocket.
    async fn signed(&self, path: &str, body: String) -> anyhow::Result<(u16, Value)> {
        if self.socket_mode {
            return self.enveloped(path, &body).await;
        }
        let now = signing::now();
        let response = self
            .http
            .post(format!("{}{path}", self.bot))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", now.to_string())
            .header(
                "x-slack-signature",
                signing::sign(&self.signing_secret, now, &body),
            )
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}

impl Sandbox {
    /// The form `signed` would have posted to `path`, delivered as a Socket Mode envelope; the
    /// acknowledgement's payload is the answer.
    async fn enveloped(&self, path: &str, form: &str) -> anyhow::Result<(u16, Value)> {
        let fields: Vec<(String, String)> = serde_urlencoded::from_str(form)?;
        if path == "/slack/events" {
            let delivery = self
                .slack
                .deliver("events_api", serde_json::from_str(form)?)
                .await;
            return Ok((if delivery.ack.is_some() { 200 } else { 504 }, Value::Null));
        }
        let (kind, payload) = if path == "/slack/interactions" {
            let json = fields
                .into_iter()
                .find(|(k, _)| k == "payload")
                .map(|(_, v)| v)
                .unwrap_or_default();
            ("interactive", serde_json::from_str(&json)?)
        } else {
            let object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            ("slash_commands", Value::Object(object))
        };
        let delivery = self.slack.deliver(kind, payload).await;
        Ok(match delivery.ack {
            Some(answer) => (200, answer),
            None => (
                504,
                json!({"detail": "the bot never acknowledged the envelope"}),
            ),
        })
    }
}

#[derive(Deserialize)]
struct OpenHome {
    user: String,
}

/// The selected person opens the app's Home tab: Slack sends `app_home_opened`.
async fn open_home(State(sandbox): State<Shared>, Json(open): Json<OpenHome>) -> Json<Value> {
    let event = json!({
        "token": "sandbox", "team_id": TEAM, "api_app_id": "A0COUNTERSIGN",
        "type": "event_callback", "event_id": format!("Ev{}", random_hex(5)),
        "event_time": Utc::now().timestamp(),
        "event": {"type": "app_home_opened", "user": open.user, "channel": "D0HOME", "tab": "home"},
    });
    match sandbox.signed("/slack/events", event.to_string()).await {
        Ok((status, body)) => Json(json!({"status": status, "body": body})),
        Err(error) => failed(error),
    }
}

fn failed(error: anyhow::Error) -> Json<Value> {
    Json(json!({"status": 502, "body": {"detail": error.to_string()}}))
}

#[derive(Deserialize)]
struct Click {
    user: String,
    action_id: String,
    value: String,
    message_ts: String,
    /// The option was chosen from an overflow menu (an incident card's row), not a button.
    #[serde(default)]
    menu: bool,
}

async fn click(State(sandbox): State<Shared>, Json(click): Json<Click>) -> Json<Value> {
    let response_url = sandbox.slack.response_url(&format!("click-{}", click.user));
    let act = if click.menu {
        signing::menu_choice
    } else {
        signing::block_action
    };
    let mut payload = act(
        TEAM,
        &click.user,
        &click.action_id,
        &click.value,
        CHANNEL,
        &click.message_ts,
        &response_url,
    );
    if click.message_ts.is_empty() {
        // Clicked on the Home tab: a view, not a message in the channel.
        payload["container"] = json!({"type": "view", "view_id": "VHOME"});
        if let Some(fields) = payload.as_object_mut() {
            fields.remove("channel");
            fields.remove("message");
        }
    }
    // A trigger per click, so the page knows whose modal a views.open answered.
    let trigger = format!("trigger.{}", random_hex(8));
    payload["trigger_id"] = json!(trigger);
    sandbox
        .triggers
        .lock()
        .expect("sandbox lock")
        .insert(trigger, click.user.clone());
    match sandbox
        .signed("/slack/interactions", signing::interaction_body(&payload))
        .await
    {
        Ok((status, body)) => Json(json!({"status": status, "body": body})),
        Err(error) => failed(error),
    }
}

/// A change made "in the 1Password console", outside countersign: the drift sweep notices it.
#[derive(Deserialize)]
struct ConsoleChange {
    id: String,
    state: String,
}

#[derive(Deserialize)]
struct Invite {
    user: String,
}

/// The sandbox's user is the operator at the host: `countersign passkey invite <user>`.
async fn invite(State(sandbox): State<Shared>, Json(invite): Json<Invite>) -> Json<Value> {
    let Ok(user) = SlackUserId::parse(&invite.user) else {
        return Json(json!({"error": "not a Slack user id"}));
    };
    match enrollment::invite(&sandbox.ledger, &sandbox.passkeys, &user, Utc::now()).await {
        Ok(url) => Json(json!({"url": url})),
        Err(error) => failed(error.into()),
    }
}

async fn console(State(sandbox): State<Shared>, Json(change): Json<ConsoleChange>) -> Json<Value> {
    let known = seed_users().iter().any(|u| u.id == change.id);
    if !known || !matches!(change.state.as_str(), "ACTIVE" | "SUSPENDED") {
        return Json(
            json!({"status": 422, "body": {"detail": "a seeded user and ACTIVE or SUSPENDED"}}),
        );
    }
    // The change is 1Password's audit event too, made by the account's owner in the console.
    let owner = ConsoleActor {
        uuid: "DANAOWNERUUID0000000000000".into(),
        name: "Dana Owner".into(),
        email: "dana@example.com".into(),
        ip: "203.0.113.4".into(),
        country: "CA".into(),
        region: "Ontario".into(),
        city: "Toronto".into(),
        ..ConsoleActor::default()
    };
    sandbox
        .op
        .console_set_state(&change.id, &change.state, owner);
    Json(json!({"status": 200, "body": {"id": change.id, "state": change.state}}))
}

async fn wave(State(sandbox): State<Shared>) -> Json<Value> {
    let soar = super::wave::Soar {
        http: &sandbox.http,
        bot: &sandbox.bot,
        token: &sandbox.token,
    };
    Json(super::wave::wave(soar).await)
}

#[derive(Deserialize)]
struct ViewSubmission {
    user: String,
    view_id: String,
    values: HashMap<String, HashMap<String, String>>,
}

async fn submit_view(
    State(sandbox): State<Shared>,
    Json(submission): Json<ViewSubmission>,
) -> Json<Value> {
    let Some(opened) = sandbox
        .slack
        .views()
        .into_iter()
        .find(|v| v.id == submission.view_id)
    else {
        return Json(json!({"status": 404, "body": {"detail": "no such view"}}));
    };
    let values: Vec<(&str, &str, &str)> = submission
        .values
        .iter()
        .flat_map(|(block, inputs)| {
            inputs
                .iter()
                .map(move |(action, value)| (block.as_str(), action.as_str(), value.as_str()))
        })
        .collect();
    let view = &opened.view;
    let payload = signing::view_submission(
        TEAM,
        &submission.user,
        view["callback_id"].as_str().unwrap_or_default(),
        view["private_metadata"].as_str().unwrap_or_default(),
        &values,
    );
    match sandbox
        .signed("/slack/interactions", signing::interaction_body(&payload))
        .await
    {
        Ok((status, body)) => {
            if body["response_action"] != "errors" {
                sandbox
                    .submitted
                    .lock()
                    .expect("sandbox lock")
                    .insert(opened.id);
            }
            Json(json!({"status": status, "body": body}))
        }
        Err(error) => failed(error),
    }
}

#[derive(Deserialize)]
struct Propose {
    action: String,
    email: String,
    reason: String,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    confidence: Option<String>,
}

async fn propose(State(sandbox): State<Shared>, Json(form): Json<Propose>) -> Json<Value> {
    let body = json!({
        "action": form.action, "user": {"email": form.email}, "reason": form.reason,
        "source": {"platform": form.platform.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "sandbox".into()),
                   "confidence": form.confidence.unwrap_or_else(|| "high".into())},
    });
    let sent = sandbox
        .http
        .post(format!("{}/v1/proposals", sandbox.bot))
        .bearer_auth(&sandbox.token)
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Json(json!({"status": status, "body": body}))
        }
        Err(error) => failed(error.into()),
    }
}

#[derive(Deserialize)]
struct Command {
    user: String,
    command: String,
    text: String,
}

async fn command(State(sandbox): State<Shared>, Json(command): Json<Command>) -> Json<Value> {
    let response_url = sandbox
        .slack
        .response_url(&format!("command-{}", command.user));
    let body = signing::slash_command_body(
        TEAM,
        &command.user,
        &command.command,
        &command.text,
        CHANNEL,
        &response_url,
    );
    match sandbox.signed("/slack/commands", body).await {
        Ok((status, answer)) => {
            let text = answer["text"].as_str().unwrap_or_default().to_owned();
            sandbox
                .answers
                .lock()
                .expect("sandbox lock")
                .push((command.user, text.clone()));
            Json(json!({"status": status, "answer": text}))
        }
        Err(error) => failed(error),
    }
}
