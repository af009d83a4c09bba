//! A client for the Users API: list, get, suspend and reactivate, each with a fresh token
//! (refreshed once on a 401), errors sorted by the gRPC status their body carries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::model::{grpc, ErrorBody, OpError, User, UserPage};
use super::token::CachedToken;
use crate::domain::{AccountId, Email, OnePasswordUserId};
use crate::metrics::Metrics;

/// The most "List users" returns a page; fewer calls for a large account.
const PAGE_SIZE: u32 = 1000;
/// How long a listing serves email lookups. A miss always lists again.
const DIRECTORY_FOR: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct OnePasswordConfig {
    pub base_url: String,
    /// The path's version segment (`OP_API_VERSION`, default `v1beta1`): the API is a public
    /// preview and may move.
    pub api_version: String,
    pub account: AccountId,
    pub client_id: String,
    pub client_secret: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for OnePasswordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePasswordConfig")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("account", &self.account)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// The URLs the client calls, from the base URL, version and account (none is secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub token: String,
    pub revoke: String,
    pub users: String,
}

impl Endpoints {
    fn of(config: &OnePasswordConfig) -> Self {
        let base = config.base_url.trim_end_matches('/');
        let version = config.api_version.trim_matches('/');
        Self {
            token: format!("{base}/{version}/users/oauth2/token"),
            revoke: format!("{base}/{version}/users/oauth2/revoke"),
            users: format!("{base}/{version}/accounts/{}/users", config.account),
        }
    }
}

pub struct OnePassword {
    pub(super) http: reqwest::Client,
    pub(super) config: OnePasswordConfig,
    pub(super) endpoints: Endpoints,
    pub(super) token: Mutex<Option<CachedToken>>,
    /// The account's users as last listed, for email lookups.
    directory: std::sync::Mutex<Option<(Instant, Vec<User>)>>,
    pub(super) metrics: Arc<Metrics>,
}

impl OnePassword {
    pub fn new(config: OnePasswordConfig, metrics: Arc<Metrics>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            endpoints: Endpoints::of(&config),
            config,
            token: Mutex::new(None),
            directory: std::sync::Mutex::new(None),
            metrics,
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub async fn get_user(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        let url = format!("{}/{id}", self.endpoints.users);
        self.call("get_user", Method::GET, &url, &[]).await
    }

    pub async fn suspend(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        let url = format!("{}/{id}:suspend", self.endpoints.users);
        self.call("suspend", Method::POST, &url, &[]).await
    }

    pub async fn reactivate(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        let url = format!("{}/{id}:reactivate", self.endpoints.users);
        self.call("reactivate", Method::POST, &url, &[]).await
    }

    /// Every user in the account, active and suspended, following page tokens to the end.
    /// The listing is asked without a `filter`: "omit it to get both" is one walk, where the
    /// two documented filters would be two.
    pub async fn list_users(&self) -> Result<Vec<User>, OpError> {
        let mut users = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut query = vec![("max_page_size", PAGE_SIZE.to_string())];
            if !page_token.is_empty() {
                query.push(("page_token", page_token.clone()));
            }
            let page: UserPage = self
                .call("list_users", Method::GET, &self.endpoints.users, &query)
                .await?;
            let next = page.next_page_token.clone().unwrap_or_default();
            let (readable, skipped) = page.users();
            if skipped > 0 {
                tracing::warn!(skipped, "1Password listed users countersign cannot read");
            }
            users.extend(readable);
            // A server that hands back the token it was given would page forever.
            if next.is_empty() || next == page_token {
                return Ok(users);
            }
            page_token = next;
        }
    }

    /// Every user, listed afresh; the listing also serves the next email lookups (the drift
    /// sweep and intake share one walk).
    pub async fn refresh_directory(&self) -> Result<Vec<User>, OpError> {
        let users = self.list_users().await?;
        *self.directory.lock().expect("directory lock") = Some((Instant::now(), users.clone()));
        Ok(users)
    }

    /// Finds a user by email. The API has no lookup by email, so this pages the list; the list
    /// is kept briefly (then one GET per lookup) and read again on a miss, so an incident's burst
    /// of proposals does not page the whole account for each one.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, OpError> {
        let find = |users: &[User]| users.iter().find(|u| u.has_email(email.as_str())).cloned();
        let cached = match self.directory.lock().expect("directory lock").as_ref() {
            Some((at, users)) if at.elapsed() < DIRECTORY_FOR => find(users),
            _ => None,
        };
        // The listing gives the id; the user's state is read fresh, since it is what the card
        // shows and what an action changes.
        let cached_id = cached.and_then(|u| u.id.and_then(|id| OnePasswordUserId::parse(&id).ok()));
        if let Some(id) = cached_id {
            match self.get_user(&id).await {
                Ok(user) => return Ok(Some(user)),
                Err(OpError::NotFound) => {}
                Err(other) => return Err(other),
            }
        }
        let users = self.list_users().await?;
        let found = find(&users);
        *self.directory.lock().expect("directory lock") = Some((Instant::now(), users));
        Ok(found)
    }

    /// One API call, timed and counted by `endpoint`.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T, OpError> {
        let started = Instant::now();
        let result = self.call_with_fresh_token(method, url, query).await;
        let error = result.as_ref().err().map(ToString::to_string);
        self.metrics
            .call("onepassword", endpoint, started.elapsed(), error);
        result
    }

    async fn call_with_fresh_token<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T, OpError> {
        let token = self.token(false).await?;
        let response = self.send(method.clone(), url, query, &token).await?;
        // A token can be revoked or expire early; refresh it once and try again.
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            let token = self.token(true).await?;
            self.send(method, url, query, &token).await?
        } else {
            response
        };
        parse(response).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        token: &str,
    ) -> Result<reqwest::Response, OpError> {
        self.http
            .request(method, url)
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .map_err(transport_error)
    }
}

pub(super) fn transport_error(error: reqwest::Error) -> OpError {
    let what = if error.is_timeout() {
        "timed out"
    } else {
        "could not be reached"
    };
    OpError::Transient {
        message: format!("1Password {what}: {}", without_url(&error)),
        retry_after: None,
        throttled: false,
    }
}

/// reqwest's message without the URL, which is ours and only noise.
fn without_url(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut last = error.to_string();
    while let Some(inner) = source {
        last = inner.to_string();
        source = inner.source();
    }
    last
}

/// `Retry-After` in seconds, as sent; callers cap it.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Whether an error is worth retrying: by HTTP status, or by the gRPC status of its body
/// (a gateway may send UNAVAILABLE with any HTTP status).
fn is_transient(status: StatusCode, code: Option<i64>) -> bool {
    let by_status = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
    let by_code = matches!(
        code,
        Some(
            grpc::UNAVAILABLE | grpc::RESOURCE_EXHAUSTED | grpc::DEADLINE_EXCEEDED | grpc::ABORTED
        )
    );
    by_status || by_code
}

pub(super) async fn parse<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, OpError> {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = response.bytes().await.map_err(transport_error)?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| OpError::Transient {
            message: format!("1Password sent an answer countersign cannot read: {e}"),
            retry_after: None,
            throttled: false,
        });
    }
    let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let code = error.code();
    let message = error
        .message()
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
    if status == StatusCode::NOT_FOUND || code == Some(grpc::NOT_FOUND) {
        return Err(OpError::NotFound);
    }
    if is_transient(status, code) {
        return Err(OpError::Transient {
            message: format!("{} {message}", status.as_u16()),
            retry_after,
            throttled: status == StatusCode::TOO_MANY_REQUESTS
                || code == Some(grpc::RESOURCE_EXHAUSTED),
        });
    }
    Err(OpError::Permanent {
        status: status.as_u16(),
        code,
        message,
    })
}
