//! A client for the Users API: a client-credentials token cached until shortly before it
//! expires and refreshed once on a 401, then list, get, suspend and reactivate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::model::{ErrorBody, OpError, TokenResponse, User, UserPage};
use crate::domain::{AccountId, Email, OnePasswordUserId};
use crate::metrics::Metrics;

/// Refresh this long before the token's stated expiry, so a request never carries a token
/// that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const PAGE_SIZE: u32 = 1000;
/// How long a listing serves email lookups. A miss always lists again.
const DIRECTORY_FOR: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct OnePasswordConfig {
    pub base_url: String,
    pub account: AccountId,
    pub client_id: String,
    pub client_secret: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for OnePasswordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePasswordConfig")
            .field("base_url", &self.base_url)
            .field("account", &self.account)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

pub struct OnePassword {
    http: reqwest::Client,
    config: OnePasswordConfig,
    token: Mutex<Option<CachedToken>>,
    /// The account's users as last listed, for email lookups.
    directory: std::sync::Mutex<Option<(Instant, Vec<User>)>>,
    metrics: Arc<Metrics>,
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
            config,
            token: Mutex::new(None),
            directory: std::sync::Mutex::new(None),
            metrics,
        }
    }

    fn users_url(&self) -> String {
        format!(
            "{}/v1beta1/accounts/{}/users",
            self.config.base_url.trim_end_matches('/'),
            self.config.account
        )
    }

    pub async fn get_user(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        self.call(
            "get_user",
            Method::GET,
            &format!("{}/{id}", self.users_url()),
            &[],
        )
        .await
    }

    pub async fn suspend(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        self.call(
            "suspend",
            Method::POST,
            &format!("{}/{id}:suspend", self.users_url()),
            &[],
        )
        .await
    }

    pub async fn reactivate(&self, id: &OnePasswordUserId) -> Result<User, OpError> {
        self.call(
            "reactivate",
            Method::POST,
            &format!("{}/{id}:reactivate", self.users_url()),
            &[],
        )
        .await
    }

    /// Every user in the account, following page tokens to the end.
    pub async fn list_users(&self) -> Result<Vec<User>, OpError> {
        let mut users = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut query = vec![
                ("filter", "user.isActive() || user.isSuspended()".to_owned()),
                ("max_page_size", PAGE_SIZE.to_string()),
            ];
            if !page_token.is_empty() {
                query.push(("page_token", page_token.clone()));
            }
            let page: UserPage = self
                .call("list_users", Method::GET, &self.users_url(), &query)
                .await?;
            users.extend(page.results);
            match page.next_page_token {
                Some(next) if !next.is_empty() => page_token = next,
                _ => return Ok(users),
            }
        }
    }

    /// Finds a user by email. The API has no lookup by email, so this pages the list; the list
    /// is kept briefly (then one GET per lookup) and read again on a miss, so an incident's burst
    /// of proposals does not page the whole account for each one.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, OpError> {
        let find = |users: &[User]| {
            users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(email.as_str()))
                .cloned()
        };
        let cached = match self.directory.lock().expect("directory lock").as_ref() {
            Some((at, users)) if at.elapsed() < DIRECTORY_FOR => find(users),
            _ => None,
        };
        // The listing gives the id; the user's state is read fresh, since it is what the card
        // shows and what an action changes.
        if let Some(id) = cached.and_then(|u| OnePasswordUserId::parse(&u.id).ok()) {
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
        let started = std::time::Instant::now();
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

    async fn token(&self, force_refresh: bool) -> Result<String, OpError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if !force_refresh && Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let started = Instant::now();
        let fetched = self.fetch_token().await;
        let error = fetched.as_ref().err().map(ToString::to_string);
        self.metrics
            .call("onepassword", "token", started.elapsed(), error);
        let fresh = fetched?;
        let lifetime = Duration::from_secs(fresh.expires_in);
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        *cached = Some(CachedToken {
            value: fresh.access_token.clone(),
            refresh_at,
        });
        Ok(fresh.access_token)
    }

    /// The client-credentials grant, with HTTP Basic client authentication.
    async fn fetch_token(&self) -> Result<TokenResponse, OpError> {
        let url = format!(
            "{}/v1beta1/users/oauth2/token",
            self.config.base_url.trim_end_matches('/')
        );
        let response = self
            .http
            .post(url)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(transport_error)?;
        match response.status() {
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN => Err(OpError::Permanent {
                status: response.status().as_u16(),
                message: "the OAuth client credentials were refused (check OP_CLIENT_ID and OP_CLIENT_SECRET)".into(),
            }),
            _ => parse(response).await,
        }
    }
}

fn transport_error(error: reqwest::Error) -> OpError {
    let what = if error.is_timeout() {
        "timed out"
    } else {
        "could not be reached"
    };
    OpError::Transient {
        message: format!("1Password {what}: {}", without_url(&error)),
        retry_after: None,
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

async fn parse<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, OpError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.map_err(transport_error)?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| OpError::Transient {
            message: format!("1Password sent an answer countersign cannot read: {e}"),
            retry_after: None,
        });
    }
    let message = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect());
    Err(match status {
        StatusCode::NOT_FOUND => OpError::NotFound,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => OpError::Transient {
            message: format!("{} {message}", status.as_u16()),
            retry_after,
        },
        s if s.is_server_error() => OpError::Transient {
            message: format!("{} {message}", s.as_u16()),
            retry_after,
        },
        s => OpError::Permanent {
            status: s.as_u16(),
            message,
        },
    })
}
