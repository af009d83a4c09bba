//! The Web API methods the stand-in answers, each as Slack's reference page describes it, and
//! the `response_url` endpoint.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{
    FakeSlack, FakeState, OpenedView, PostedMessage, Shared, SlackCall, SlackUserKind, BOT_ID,
    BOT_USER, KNOWN_METHODS,
};

impl FakeState {
    /// Whether the posting limit lets one more message into `channel` now.
    fn post_allowed(&mut self, channel: Option<&str>) -> bool {
        let Some((every, burst)) = self.post_limit else {
            return true;
        };
        let now = std::time::Instant::now();
        let (tokens, at) = self
            .post_buckets
            .entry(channel.unwrap_or_default().to_owned())
            .or_insert((burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() / every.as_secs_f64()).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Like Slack: the posting time, unique and increasing within the channel.
    pub(super) fn next_ts(&mut self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_micros() as u64;
        let micros = now.max(self.next_seq + 100);
        self.next_seq = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

/// Slack answers API errors with HTTP 200 and `ok: false`.
fn slack_error(error: &str) -> Response {
    Json(json!({ "ok": false, "error": error })).into_response()
}

fn ok(mut body: Value) -> Response {
    body["ok"] = json!(true);
    Json(body).into_response()
}

/// Merges query-string and body parameters. slack-morphism sends JSON for POST methods and
/// a query string for GET ones; form bodies are accepted too, where Slack JSON-encodes
/// structured fields such as `blocks` and `view`.
fn merged_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut params = Map::new();
    let mut add_pairs = |encoded: &[u8]| {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(encoded).unwrap_or_default();
        for (key, value) in pairs {
            let structured = (value.starts_with('[') || value.starts_with('{'))
                .then(|| serde_json::from_str(&value).ok())
                .flatten();
            params.insert(key, structured.unwrap_or(Value::String(value)));
        }
    };
    add_pairs(query.unwrap_or_default().as_bytes());

    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        if let Ok(Value::Object(fields)) = serde_json::from_slice(body) {
            params.extend(fields);
        }
    } else {
        add_pairs(body);
    }
    Value::Object(params)
}

fn str_param<'a>(params: &'a Value, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

/// Every `/api/<method>`: record, then rate limit, method, token, and finally dispatch.
pub(super) async fn api(
    State(state): State<Shared>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = merged_params(query.as_deref(), &headers, &body);
    let mut s = state.lock().expect("fake Slack state poisoned");
    s.calls.push(SlackCall {
        method: method.clone(),
        params: params.clone(),
    });

    if let Some((remaining, retry_after)) = s.rate_limits.get_mut(&method).filter(|(n, _)| *n > 0) {
        *remaining -= 1;
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "ok": false, "error": "ratelimited" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        return response;
    }
    if let Some(status) = s.failing.get(&method) {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, Json(json!({ "ok": false, "error": "fatal_error" }))).into_response();
    }
    if !KNOWN_METHODS.contains(&method.as_str()) {
        return slack_error("unknown_method");
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Slack also accepts the token as a parameter of form-encoded calls.
    let token = bearer.or_else(|| str_param(&params, "token"));
    // apps.connections.open takes the app-level token, in the header only; every other
    // method the bot token.
    let expected = if method == "apps.connections.open" {
        bearer
    } else {
        token
    };
    let wanted = if method == "apps.connections.open" {
        FakeSlack::APP_TOKEN
    } else {
        FakeSlack::BOT_TOKEN
    };
    if method == "apps.connections.open" && s.app_token_revoked {
        return slack_error("invalid_auth");
    }
    match expected {
        Some(t) if t == wanted => {}
        Some(FakeSlack::BOT_TOKEN | FakeSlack::APP_TOKEN) => {
            return slack_error("not_allowed_token_type")
        }
        Some(_) => return slack_error("invalid_auth"),
        None => return slack_error("not_authed"),
    }

    if method == "chat.postMessage" && !s.post_allowed(str_param(&params, "channel")) {
        s.posts_refused += 1;
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "ok": false, "error": "ratelimited" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1));
        return response;
    }
    let answer = match method.as_str() {
        "apps.connections.open" => ok(super::socket::open_url(&mut s)),
        "auth.test" => auth_test(&s),
        "chat.postMessage" => post_message(&mut s, &params),
        "chat.update" => update_message(&mut s, &params),
        "chat.postEphemeral" => post_ephemeral(&mut s, &params),
        "views.open" => open_view(&mut s, &params),
        "views.publish" => publish_view(&mut s, &params),
        "users.info" => users_info(&s, &params),
        "conversations.history" => history(&s, &params),
        "usergroups.users.list" => usergroup_members(&s, &params),
        _ => unreachable!("KNOWN_METHODS and this match list the same methods"),
    };
    // The call took effect, but the caller never learns it did.
    if let Some(remaining) = s.lost_answers.get_mut(&method).filter(|n| **n > 0) {
        *remaining -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    answer
}

/// "auth.test": who the token belongs to.
fn auth_test(s: &FakeState) -> Response {
    ok(json!({
        "url": "https://countersign-test.slack.com/",
        "team": "countersign test",
        "user": "countersign",
        "team_id": s.team,
        "user_id": BOT_USER,
        "bot_id": BOT_ID,
    }))
}

/// Messages of a channel newest first, as conversations.history lists them (`oldest` honoured).
/// Message metadata is returned only when asked with `include_all_metadata` ("Return all
/// metadata associated with messages. Defaults to false").
fn history(s: &FakeState, params: &Value) -> Response {
    let Some(channel) = str_param(params, "channel") else {
        return slack_error("channel_not_found");
    };
    let with_metadata = matches!(params.get("include_all_metadata"), Some(Value::Bool(true)))
        || matches!(
            str_param(params, "include_all_metadata"),
            Some("true" | "1")
        );
    let oldest: f64 = str_param(params, "oldest")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0.0);
    let messages: Vec<Value> = s
        .messages
        .iter()
        .rev()
        .filter(|m| m.channel == channel && m.thread_ts.is_none())
        .filter(|m| m.ts.parse::<f64>().unwrap_or(0.0) >= oldest)
        .map(|m| {
            let mut echoed = bot_message(m);
            echoed["ts"] = json!(m.ts);
            if !with_metadata {
                if let Some(fields) = echoed.as_object_mut() {
                    fields.remove("metadata");
                }
            }
            echoed
        })
        .collect();
    ok(json!({ "messages": messages, "has_more": false }))
}

/// The message object Slack echoes back (without `ts`, which chat.update leaves out).
fn bot_message(message: &PostedMessage) -> Value {
    let mut echoed = json!({
        "type": "message",
        "user": message.user,
        "text": message.text.clone().unwrap_or_default(),
    });
    if message.user == BOT_USER {
        echoed["bot_id"] = json!(BOT_ID);
    }
    if !message.metadata.is_null() {
        echoed["metadata"] = message.metadata.clone();
    }
    if let Some(thread_ts) = &message.thread_ts {
        echoed["thread_ts"] = json!(thread_ts);
    }
    if !message.blocks.is_null() {
        echoed["blocks"] = message.blocks.clone();
    }
    echoed
}

fn post_message(s: &mut FakeState, params: &Value) -> Response {
    let Some(channel) = str_param(params, "channel").filter(|c| !c.is_empty()) else {
        return slack_error("channel_not_found");
    };
    if let Some(error) = super::block_kit::refusal(str_param(params, "text"), params.get("blocks"))
    {
        return slack_error(error);
    }
    let message = PostedMessage {
        channel: channel.to_owned(),
        ts: s.next_ts(),
        thread_ts: str_param(params, "thread_ts").map(str::to_owned),
        text: str_param(params, "text").map(str::to_owned),
        blocks: params.get("blocks").cloned().unwrap_or(Value::Null),
        metadata: params.get("metadata").cloned().unwrap_or(Value::Null),
        user: BOT_USER.to_owned(),
    };
    // slack-morphism requires `message.ts` here.
    let mut echoed = bot_message(&message);
    echoed["ts"] = json!(message.ts);
    let body = json!({ "channel": message.channel, "ts": message.ts, "message": echoed });
    s.messages.push(message);
    ok(body)
}

/// Like Slack, omitted `text` or `blocks` keep their previous value.
fn update_message(s: &mut FakeState, params: &Value) -> Response {
    let (Some(channel), Some(ts)) = (str_param(params, "channel"), str_param(params, "ts")) else {
        return slack_error("message_not_found");
    };
    if let Some(error) = super::block_kit::refusal(str_param(params, "text"), params.get("blocks"))
    {
        return slack_error(error);
    }
    let Some(message) = s
        .messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts)
    else {
        return slack_error("message_not_found");
    };
    if let Some(text) = str_param(params, "text") {
        message.text = Some(text.to_owned());
    }
    if let Some(blocks) = params.get("blocks") {
        message.blocks = blocks.clone();
    }
    ok(json!({
        "channel": message.channel,
        "ts": message.ts,
        "text": message.text.clone().unwrap_or_default(),
        "message": bot_message(message),
    }))
}

fn post_ephemeral(s: &mut FakeState, params: &Value) -> Response {
    if str_param(params, "channel").is_none_or(str::is_empty) {
        return slack_error("channel_not_found");
    }
    if str_param(params, "user").is_none_or(str::is_empty) {
        return slack_error("user_not_found");
    }
    ok(json!({ "message_ts": s.next_ts() }))
}

/// Echoes the requested view with the fields Slack adds (slack-morphism requires
/// `id`, `team_id`, `hash`, `type`, `title` and `blocks`).
fn open_view(s: &mut FakeState, params: &Value) -> Response {
    let (Some(trigger), Some(Value::Object(requested))) =
        (str_param(params, "trigger_id"), params.get("view"))
    else {
        return slack_error("invalid_arguments");
    };
    let mut view = requested.clone();
    s.next_seq += 1;
    view.insert("id".into(), json!(format!("V{:08}", s.next_seq)));
    view.insert("team_id".into(), json!(s.team));
    view.insert("hash".into(), json!("h"));
    view.insert("state".into(), json!({ "values": {} }));
    view.entry("type").or_insert_with(|| json!("modal"));
    view.entry("blocks").or_insert_with(|| json!([]));
    view.entry("private_metadata").or_insert_with(|| json!(""));
    view.entry("callback_id").or_insert_with(|| json!(""));
    let view = Value::Object(view);
    s.views.push(OpenedView {
        id: view["id"].as_str().unwrap_or_default().to_owned(),
        trigger_id: trigger.to_owned(),
        view: view.clone(),
    });
    ok(json!({ "view": view }))
}

/// "views.publish": `user_id` and a `view` of type `home` ("Max of 100 blocks"; block ids
/// unique within the view); the user's Home is replaced.
fn publish_view(s: &mut FakeState, params: &Value) -> Response {
    let (Some(user), Some(Value::Object(view))) =
        (str_param(params, "user_id"), params.get("view"))
    else {
        return slack_error("invalid_arguments");
    };
    if !s.users.contains_key(user) {
        return slack_error("invalid_arguments");
    }
    if view.get("type").and_then(Value::as_str) != Some("home") {
        return slack_error("invalid_arguments");
    }
    let blocks = view
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if blocks.len() > 100 {
        return slack_error("invalid_arguments");
    }
    let mut ids = std::collections::HashSet::new();
    let unique = blocks
        .iter()
        .filter_map(|b| b.get("block_id").and_then(Value::as_str))
        .all(|id| ids.insert(id.to_owned()));
    if !unique {
        return slack_error("invalid_blocks");
    }
    let view = Value::Object(view.clone());
    s.homes.insert(user.to_owned(), view.clone());
    ok(json!({ "view": view }))
}

fn users_info(s: &FakeState, params: &Value) -> Response {
    let Some((id, user)) = str_param(params, "user").and_then(|id| s.users.get_key_value(id))
    else {
        return slack_error("user_not_found");
    };
    let mut profile = json!({ "real_name": user.name, "display_name": user.name });
    if let Some(email) = &user.email {
        profile["email"] = json!(email);
    }
    let kind = &user.kind;
    let team = match kind {
        SlackUserKind::OtherWorkspace(team) => team.as_str(),
        _ => s.team.as_str(),
    };
    ok(json!({
        "user": {
            "id": id,
            "team_id": team,
            "name": user.name,
            "real_name": user.name,
            "deleted": *kind == SlackUserKind::Deactivated,
            "is_bot": *kind == SlackUserKind::Bot,
            "is_app_user": *kind == SlackUserKind::App,
            "is_restricted": matches!(kind, SlackUserKind::Guest | SlackUserKind::SingleChannelGuest),
            "is_ultra_restricted": *kind == SlackUserKind::SingleChannelGuest,
            "profile": profile,
        }
    }))
}

fn usergroup_members(s: &FakeState, params: &Value) -> Response {
    match str_param(params, "usergroup").and_then(|id| s.usergroups.get(id)) {
        Some(members) => ok(json!({ "users": members })),
        None => slack_error("no_such_subteam"),
    }
}

/// A `response_url`: Slack accepts a JSON message and answers `{"ok":true}`.
pub(super) async fn response_url(
    State(state): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let stall = state
        .lock()
        .expect("fake Slack state poisoned")
        .response_stall;
    if !stall.is_zero() {
        tokio::time::sleep(stall).await;
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    state
        .lock()
        .expect("fake Slack state poisoned")
        .responses
        .entry(id)
        .or_default()
        .push(message);
    Json(json!({ "ok": true })).into_response()
}
