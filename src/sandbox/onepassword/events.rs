//! A stand-in for the 1Password Events API's audit events, served beside the Users API stand-in
//! and written from 1Password's published pages and OpenAPI document, never from a client:
//! developer.1password.com/docs/events-api — "API reference" (`POST /api/v2/auditevents`,
//! `GET /api/v2/auth/introspect`), "Audit events" (the event object), "Pagination" (reset cursor
//! and cursor), "Authorization", "HTTP status codes" and "Rate limits" — and the OpenAPI document
//! (1password-events-api.yaml: `ResetCursor`, `CursorCollection`, `AuditEvent`, `Session`,
//! `Location`, `IntrospectionV2`, `Error`).
//!
//! What it holds from them:
//! - A reset cursor `{limit?, start_time?, end_time?}`: `limit` 1..=1000, default 100;
//!   `start_time` defaults to an hour before `end_time`, or to an hour ago. A cursor `{cursor}`
//!   continues from where the last answer left off; every answer is `{cursor, has_more, items}`.
//! - `/auditevents` "requires your JSON Web Token to have the auditevents feature"; introspection
//!   lists a token's features and the account it was issued in.
//! - Errors are `{"Error": {"Message": …}}`; 400, 401, 429 and 500 are the published statuses;
//!   the limits are 600 requests a minute and 30,000 an hour.
//!
//! Only the v2 endpoints are served (not `/api/v1/…`, nor item usages or sign-in attempts).
//!
//! An audit event is appended whenever a user's state changes through the Users API (the actor
//! is the partner integration's service account) or `console_set_state` (a person in the
//! console). `set_state` changes a user without one: a change the log never reports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use ::base64::Engine as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::wire::{base64, events_error};
use super::{lock, FakeOnePassword, InjectedFailure, RecordedRequest, SeedUser, Shared};

/// "Pagination": `limit` is 1 to 1000 and defaults to 100.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// "Rate limits": 600 requests per minute, 30,000 per hour.
const PER_MINUTE: u32 = 600;
const PER_HOUR: usize = 30_000;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const INTEGRATION_DEVICE: &str = "USERSAPIINTEGRATIONDEVICE0";
const INTEGRATION_IP: &str = "127.0.0.1";

/// An Events Reporting bearer token and the features it was issued for.
struct EventsToken {
    token: &'static str,
    /// The Events Reporting integration's UUID, which introspection answers.
    integration: &'static str,
    features: &'static [&'static str],
}

const TOKENS: [EventsToken; 2] = [
    EventsToken {
        token: FakeOnePassword::EVENTS_TOKEN,
        integration: "EVENTSINTEGRATIONALL000000",
        features: &["auditevents", "itemusages", "signinattempts"],
    },
    EventsToken {
        token: FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT,
        integration: "EVENTSINTEGRATIONNOAUDIT00",
        features: &["signinattempts", "itemusages"],
    },
];

impl FakeOnePassword {
    /// An Events API bearer token with every feature: auditevents, itemusages, signinattempts.
    pub const EVENTS_TOKEN: &'static str = "op-events-test-auditevents-itemusages-signinattempts";
    /// An Events API bearer token for sign-in attempts and item usages only.
    pub const EVENTS_TOKEN_WITHOUT_AUDIT: &'static str = "op-events-test-signinattempts-itemusages";
    /// The actor of every change made through the Users API: the partner integration.
    pub const SERVICE_ACCOUNT_UUID: &'static str = "USERSAPISERVICEACCOUNT0000";
    pub const SERVICE_ACCOUNT_NAME: &'static str = "Users API integration";

    /// Changes a user's state as `actor` would in the 1Password console; the audit log reports
    /// it ("suspend" or "reactive") only if the state changed.
    pub fn console_set_state(&self, id: &str, state: &str, actor: ConsoleActor) {
        let mut guard = self.lock();
        let s = &mut *guard;
        if let Some(user) = s.users.iter_mut().find(|u| u.id == id) {
            let from = std::mem::replace(&mut user.state, state.to_owned());
            s.events.record_change(user, &from, Actor::Console(&actor));
        }
    }

    /// Every audit event so far, oldest first, as the Events API sends them.
    pub fn audit_events(&self) -> Vec<Value> {
        self.lock()
            .events
            .log
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }

    /// Each Events API token may make `per_minute` requests a minute (600 unless told).
    pub fn limit_events_to(&self, per_minute: u32) {
        self.lock().events.per_minute = per_minute.max(1);
    }

    /// The next `n` Events API requests answer `status` with the Events API error body (and
    /// `Retry-After` if given), before any token check. They are still recorded.
    pub fn fail_next_events(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().events.injected = Some(InjectedFailure {
            remaining: n,
            status,
            retry_after,
        });
    }

    /// Number of Events API requests received, refused ones included.
    pub fn events_requests(&self) -> usize {
        self.lock().events.requests.len()
    }

    /// Every Events API request, in order; they are kept apart from `requests()`, which holds
    /// the Users API's.
    pub fn events_request_log(&self) -> Vec<RecordedRequest> {
        self.lock().events.requests.clone()
    }
}

/// A person acting in the 1Password console, as an audit event reports them.
#[derive(Clone, Debug, Default)]
pub struct ConsoleActor {
    pub uuid: String,
    pub name: String,
    pub email: String,
    /// The IP address of their session.
    pub ip: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// Who changed a user.
pub(super) enum Actor<'a> {
    /// The partner integration, through the Users API.
    Integration,
    Console(&'a ConsoleActor),
}

struct Stored {
    at: DateTime<Utc>,
    event: Value,
}

/// A position in the log and the filter it was opened with; sent as base64 of its JSON.
#[derive(Serialize, Deserialize)]
struct Cursor {
    position: usize,
    start_time: DateTime<Utc>,
    end_time: Option<DateTime<Utc>>,
    limit: usize,
}

pub(super) struct EventsState {
    /// Oldest first; a cursor's position is an index into it.
    log: Vec<Stored>,
    /// Cursors handed out: any other is refused.
    issued: HashSet<String>,
    per_minute: u32,
    /// Per token, when each request it was allowed arrived, over the last hour.
    admitted: HashMap<&'static str, VecDeque<Instant>>,
    injected: Option<InjectedFailure>,
    requests: Vec<RecordedRequest>,
    /// When the tokens were issued and the integration's session began.
    started: DateTime<Utc>,
    integration_session: String,
}

impl Default for EventsState {
    fn default() -> Self {
        Self {
            log: Vec::new(),
            issued: HashSet::new(),
            per_minute: PER_MINUTE,
            admitted: HashMap::new(),
            injected: None,
            requests: Vec::new(),
            started: Utc::now(),
            integration_session: op_uuid(),
        }
    }
}

impl EventsState {
    pub(super) fn record_request(&mut self, request: RecordedRequest) {
        self.requests.push(request);
    }

    /// Appends the audit event for `user` having gone from state `from` to its state now, if
    /// that is a suspension or a reactivation.
    pub(super) fn record_change(&mut self, user: &SeedUser, from: &str, actor: Actor<'_>) {
        let action = match user.state.as_str() {
            to if to == from => return,
            "SUSPENDED" => "suspend",
            // Sic: the published action enum spells reactivation "reactive".
            "ACTIVE" => "reactive",
            _ => return,
        };
        // Microseconds, as sent, so a timestamp read back as `start_time` finds its own event.
        let at = Utc::now().trunc_subsecs(6);
        let (actor_uuid, details, session, location) = match actor {
            // A service account has no email address: the field is left out, not empty.
            Actor::Integration => (
                FakeOnePassword::SERVICE_ACCOUNT_UUID,
                json!({ "uuid": FakeOnePassword::SERVICE_ACCOUNT_UUID,
                        "name": FakeOnePassword::SERVICE_ACCOUNT_NAME }),
                json!({ "uuid": self.integration_session, "login_time": rfc3339(self.started),
                        "device_uuid": INTEGRATION_DEVICE, "ip": INTEGRATION_IP }),
                None,
            ),
            Actor::Console(person) => {
                let mut details = json!({ "uuid": person.uuid, "name": person.name });
                if !person.email.is_empty() {
                    details["email"] = json!(person.email);
                }
                let session = json!({ "uuid": op_uuid(), "login_time": rfc3339(at),
                                      "device_uuid": op_uuid(), "ip": person.ip });
                (person.uuid.as_str(), details, session, location(person))
            }
        };
        let mut object = json!({ "uuid": user.id });
        if let Some(name) = &user.display_name {
            object["name"] = json!(name);
        }
        if let Some(email) = &user.email {
            object["email"] = json!(email);
        }
        let mut event = json!({
            "uuid": op_uuid(),
            "timestamp": rfc3339(at),
            "actor_uuid": actor_uuid,
            "actor_details": details,
            "actor_account_uuid": FakeOnePassword::ACCOUNT_ID,
            "account_uuid": FakeOnePassword::ACCOUNT_ID,
            "action": action,
            "object_type": "user",
            "object_uuid": user.id,
            "object_details": object,
            "session": session,
        });
        if let Some(location) = location {
            event["location"] = location;
        }
        self.log.push(Stored { at, event });
    }

    /// In order: an injected failure, the bearer token (401), the rate limit (429).
    fn admit(&mut self, headers: &HeaderMap) -> Result<&'static EventsToken, Refusal> {
        if let Some(failure) = self.injected.as_mut().filter(|f| f.remaining > 0) {
            failure.remaining -= 1;
            let message = StatusCode::from_u16(failure.status)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("injected failure");
            return Err(Refusal {
                status: failure.status,
                message,
                retry_after: failure.retry_after,
            });
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = TOKENS.iter().find(|t| Some(t.token) == bearer) else {
            return Err(Refusal::new(401, "Unauthorized"));
        };
        self.throttle(token.token)?;
        Ok(token)
    }

    /// A sliding minute and hour per token; refused requests do not count.
    fn throttle(&mut self, token: &'static str) -> Result<(), Refusal> {
        let now = Instant::now();
        let admitted = self.admitted.entry(token).or_default();
        while admitted.front().is_some_and(|t| now - *t >= HOUR) {
            admitted.pop_front();
        }
        let this_minute = admitted
            .iter()
            .rev()
            .take_while(|t| now - **t < MINUTE)
            .count();
        let wait = if this_minute >= self.per_minute as usize {
            Some(MINUTE - (now - admitted[admitted.len() - this_minute]))
        } else if admitted.len() >= PER_HOUR {
            admitted.front().map(|t| HOUR - (now - *t))
        } else {
            None
        };
        if let Some(wait) = wait {
            // "Rate limits" shows no header; Retry-After says when the window frees a request.
            return Err(Refusal {
                retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                ..Refusal::new(429, "Too Many Requests")
            });
        }
        admitted.push_back(now);
        Ok(())
    }

    /// A reset cursor opens a new position at the start of the log; a cursor must be one this
    /// stand-in issued.
    fn parse(&self, body: &[u8]) -> Result<Cursor, String> {
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return Err("the body must be a JSON ResetCursor or Cursor object".into());
        };
        let field = |name: &str| request.get(name).filter(|v| !v.is_null());
        if let Some(cursor) = field("cursor") {
            return cursor
                .as_str()
                .and_then(|text| self.resume(text))
                .ok_or_else(|| "invalid cursor".into());
        }
        let limit = match field("limit") {
            None => DEFAULT_LIMIT,
            Some(limit) => limit
                .as_f64()
                .filter(|n| n.fract() == 0.0 && (1.0..=MAX_LIMIT as f64).contains(n))
                .ok_or("limit must be between 1 and 1000")? as usize,
        };
        let time = |name: &str| match field(name) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| Some(t.with_timezone(&Utc)))
                .ok_or(format!("{name} must be an RFC 3339 date and time")),
        };
        let end_time = time("end_time")?;
        let start_time = match time("start_time")? {
            Some(start) => start,
            None => end_time.unwrap_or_else(Utc::now) - TimeDelta::hours(1),
        };
        Ok(Cursor {
            position: 0,
            start_time,
            end_time,
            limit,
        })
    }

    fn resume(&self, text: &str) -> Option<Cursor> {
        if !self.issued.contains(text) {
            return None;
        }
        let bytes = ::base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Up to `limit` matching events after the cursor's position, oldest first; the next cursor
    /// continues after the last one returned (or where this one stood, if none was).
    fn page(&mut self, cursor: Cursor) -> Value {
        let mut items = Vec::new();
        let mut position = cursor.position;
        let mut has_more = false;
        for (index, stored) in self.log.iter().enumerate().skip(cursor.position) {
            let after_end = cursor.end_time.is_some_and(|end| stored.at >= end);
            if stored.at < cursor.start_time || after_end {
                continue;
            }
            if items.len() == cursor.limit {
                has_more = true;
                break;
            }
            items.push(stored.event.clone());
            position = index + 1;
        }
        let next = Cursor { position, ..cursor };
        let next = base64(&serde_json::to_vec(&next).expect("a cursor serialises"));
        self.issued.insert(next.clone());
        json!({ "cursor": next, "has_more": has_more, "items": items })
    }
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/api/v2/auditevents", post(audit_events))
        .route("/api/v2/auth/introspect", get(introspect))
}

/// "Introspect": the integration's UUID, when the token was issued, its features, the account.
async fn introspect(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = lock(&state);
    let token = match s.events.admit(&headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    Json(json!({
        "uuid": token.integration,
        "issued_at": rfc3339(s.events.started),
        "features": token.features,
        "account_uuid": FakeOnePassword::ACCOUNT_ID,
    }))
    .into_response()
}

/// "Audit events": a reset cursor or a cursor in, `{cursor, has_more, items}` out.
async fn audit_events(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = lock(&state);
    let events = &mut s.events;
    let token = match events.admit(&headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    if !token.features.contains(&"auditevents") {
        // No 403 is published: "HTTP status codes" gives 401 for a token that is not "valid
        // and scoped to access the requested resource".
        return events_error(401, "the token is not scoped for audit events");
    }
    match events.parse(&body) {
        Ok(cursor) => Json(events.page(cursor)).into_response(),
        Err(message) => events_error(400, &message),
    }
}

/// A request refused before it is looked at.
struct Refusal {
    status: u16,
    message: &'static str,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: u16, message: &'static str) -> Self {
        Self {
            status,
            message,
            retry_after: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = events_error(self.status, self.message);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn location(person: &ConsoleActor) -> Option<Value> {
    let mut location = json!({});
    for (name, value) in [
        ("country", &person.country),
        ("region", &person.region),
        ("city", &person.city),
    ] {
        if !value.is_empty() {
            location[name] = json!(value);
        }
    }
    if let Some(latitude) = person.latitude {
        location["latitude"] = json!(latitude);
    }
    if let Some(longitude) = person.longitude {
        location["longitude"] = json!(longitude);
    }
    (location != json!({})).then_some(location)
}

/// RFC 3339, as every published timestamp, with microseconds so that events in one second
/// stay apart for `start_time`.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A 26-character identifier like the published examples' ("56YE2TYN2VFYRLNSHKPW5NVT5E").
fn op_uuid() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..26)
        .map(|_| ALPHABET[rand::random::<usize>() % 32] as char)
        .collect()
}
