//! A client for the Users API: list, get, suspend and reactivate, each with a fresh token
//! (refreshed once on a 401), errors sorted by the gRPC status their body carries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::config::{Endpoints, OnePasswordConfig};
use super::model::{OpError, User, UserPage};
use super::token::Tokens;
use super::wire::{parse, transport_error};
use crate::domain::{Email, OnePasswordUserId};
use crate::metrics::Metrics;

/// The most "List users" returns a page; fewer calls for a large account.
const PAGE_SIZE: u32 = 1000;
/// How long a listing serves email lookups. A miss always lists again.
const DIRECTORY_FOR: Duration = Duration::from_secs(30);

pub struct OnePassword {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: Tokens,
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
        let endpoints = Endpoints::of(&config);
        let tokens = Tokens::new(http.clone(), &config, &endpoints, metrics.clone());
        Self {
            http,
            endpoints,
            tokens,
            directory: std::sync::Mutex::new(None),
            metrics,
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Revokes the cached access token, if there is one, so it dies with the process instead of
    /// living out its 900 s. Returns whether a token was revoked.
    pub async fn revoke_token(&self) -> Result<bool, OpError> {
        self.tokens.revoke().await
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
        let token = self.tokens.get(false).await?;
        let response = self.send(method.clone(), url, query, &token).await?;
        // A token can be revoked or expire early; refresh it once and try again.
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            let token = self.tokens.get(true).await?;
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
