//! A client for 1Password's Events API (audit events): `GET /api/v2/auth/introspect` to check
//! the token's features, and `POST /api/v2/auditevents` with a reset cursor first, then the
//! returned cursor, following `has_more`. Its bearer token is a secret of its own.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::wire::retry_after;

/// Where the Events API is and the token to ask it with. `Debug` shows no token.
#[derive(Clone)]
pub struct EventsConfig {
    /// `https://events.1password.com` (or the business, `.ca` or `.eu` host).
    pub base_url: String,
    pub token: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for EventsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsConfig")
            .field("base_url", &self.base_url)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// The most events one page asks for (the API allows 1–1000).
pub const PAGE_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Details {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Session {
    #[serde(default)]
    pub ip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Location {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
}

/// One audit event, as much of it as attribution reads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AuditEvent {
    pub uuid: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default)]
    pub actor_uuid: Option<String>,
    #[serde(default)]
    pub actor_details: Option<Details>,
    pub action: String,
    pub object_type: String,
    #[serde(default)]
    pub object_uuid: Option<String>,
    #[serde(default)]
    pub object_details: Option<Details>,
    #[serde(default)]
    pub session: Option<Session>,
    #[serde(default)]
    pub location: Option<Location>,
}

#[derive(Debug, Deserialize)]
pub struct EventPage {
    pub cursor: String,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub items: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Introspection {
    #[serde(default)]
    features: Vec<String>,
}

/// Where a page starts: the reset cursor (a time) on the first poll, the last cursor after.
#[derive(Debug, Clone)]
pub enum From {
    Start(DateTime<Utc>),
    Cursor(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("the Events API refused the token (401): check OP_EVENTS_TOKEN")]
    Unauthorized,
    #[error("the Events API token lacks the audit events feature (it has: {0}); issue a token for an Events Reporting integration with audit events")]
    NoAuditEvents(String),
    #[error("the Events API asked us to slow down (429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("the Events API answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the Events API could not be reached: {0}")]
    Transport(String),
}

pub struct AuditEvents {
    http: reqwest::Client,
    config: EventsConfig,
}

async fn refused(response: reqwest::Response) -> EventsError {
    let status = response.status();
    let after = retry_after(&response);
    match status {
        StatusCode::UNAUTHORIZED => EventsError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => EventsError::RateLimited { retry_after: after },
        _ => {
            let body = response.text().await.unwrap_or_default();
            EventsError::Refused {
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            }
        }
    }
}

fn transport(error: reqwest::Error) -> EventsError {
    EventsError::Transport(error.without_url().to_string())
}

impl AuditEvents {
    pub fn new(config: EventsConfig) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .build()
            .expect("the HTTP client builds");
        Self { http, config }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// Checks the token: it must carry the audit events feature.
    pub async fn check_token(&self) -> Result<(), EventsError> {
        let response = self
            .http
            .get(self.url("/api/v2/auth/introspect"))
            .bearer_auth(&self.config.token)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        let introspection: Introspection = response.json().await.map_err(transport)?;
        if introspection.features.iter().any(|f| f == "auditevents") {
            Ok(())
        } else {
            Err(EventsError::NoAuditEvents(
                introspection.features.join(", "),
            ))
        }
    }

    /// One page of audit events from `from`.
    pub async fn page(&self, from: &From) -> Result<EventPage, EventsError> {
        let body = match from {
            From::Start(at) => {
                json!({"limit": PAGE_LIMIT, "start_time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)})
            }
            From::Cursor(cursor) => json!({"cursor": cursor}),
        };
        let response = self
            .http
            .post(self.url("/api/v2/auditevents"))
            .bearer_auth(&self.config.token)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(refused(response).await);
        }
        response.json().await.map_err(transport)
    }
}

/// The audit events that change a user's state: 1Password's `suspend` and `reactive` on a
/// user. Items of other kinds, or that do not parse, are none of attribution's business.
pub fn user_state_changes(items: &[serde_json::Value]) -> Vec<AuditEvent> {
    items
        .iter()
        .filter(|item| {
            item["object_type"] == "user"
                && matches!(item["action"].as_str(), Some("suspend" | "reactive"))
        })
        .filter_map(|item| serde_json::from_value(item.clone()).ok())
        .collect()
}
