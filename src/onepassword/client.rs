//! A client for the Users API: list, get, suspend and reactivate, each with a fresh token
//! (refreshed once on a 401), errors sorted by the gRPC status their body carries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::config::{Endpoints, OnePasswordConfig};
use super::model::{OpError, User, UserPage};
use super::token::Tokens;
use super::wire::{parse, transport_error, Relayed};
use crate::domain::{AccountId, Email, OnePasswordUserId};
use crate::metrics::Metrics;

/// The most "List users" returns a page; fewer calls for a large account.
const PAGE_SIZE: u32 = 1000;
/// How long a listing's ids serve email lookups (each then one GET of the user).
const DIRECTORY_FOR: Duration = Duration::from_secs(30);
/// The least time between two listings made because an email was not found, by default.
const MISS_RELIST_EVERY: Duration = Duration::from_secs(60);

pub struct OnePassword {
    http: reqwest::Client,
    endpoints: Endpoints,
    /// The path's version segment and the account, as configured: what the gateway answers at.
    api_version: String,
    account: AccountId,
    tokens: Tokens,
    /// The account's users as last listed, for email lookups.
    directory: std::sync::Mutex<Option<(Instant, Vec<User>)>>,
    /// Held while a lookup lists the account, so lookups that miss together list once.
    listing: tokio::sync::Mutex<()>,
    /// The least time between two listings made because an email was not found.
    miss_relist_every: Duration,
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
            api_version: config.api_version.trim_matches('/').to_owned(),
            account: config.account.clone(),
            tokens,
            directory: std::sync::Mutex::new(None),
            listing: tokio::sync::Mutex::new(()),
            miss_relist_every: MISS_RELIST_EVERY,
            metrics,
        }
    }

    /// Lists the account again for an unknown email at most once per `every` (default 60 s).
    pub fn relisting_misses_every(mut self, every: Duration) -> Self {
        self.miss_relist_every = every;
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The Users API version countersign calls (`OP_API_VERSION`).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The account countersign governs (`OP_ACCOUNT_ID`).
    pub fn account(&self) -> &AccountId {
        &self.account
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
    /// sweep and intake share one walk), hits and misses alike.
    pub async fn refresh_directory(&self) -> Result<Vec<User>, OpError> {
        let users = self.list_users().await?;
        self.remember(users.clone());
        Ok(users)
    }

    /// Finds a user by email. The API has no lookup by email, so this pages the list; the list
    /// is kept briefly (then one GET per lookup), so an incident's burst of proposals does not
    /// page the whole account for each one. An email the list lacks is unknown until the list
    /// is older than the miss interval (60 s by default): a stream of unknown emails costs one
    /// listing per interval, and lookups that miss together share one listing.
    pub async fn find_by_email(&self, email: &Email) -> Result<Option<User>, OpError> {
        let (seen, listed) = self.listed(email);
        match listed {
            // The listing gives the id; the user's state is read fresh, since it is what the
            // card shows and what an action changes.
            Listed::Known(id) => match self.get_user(&id).await {
                Ok(user) => return Ok(Some(user)),
                // Gone since the listing, which is then wrong about them: list again.
                Err(OpError::NotFound) => {}
                Err(other) => return Err(other),
            },
            Listed::Unknown => return Ok(None),
            Listed::Stale => {}
        }
        let _one_listing_at_a_time = self.listing.lock().await;
        // A lookup that missed while another listed reads that listing instead of its own.
        if let Some(found) = self.in_listing_newer_than(seen, email) {
            return Ok(found);
        }
        let users = self.list_users().await?;
        let found = find(&users, email);
        self.remember(users);
        Ok(found)
    }

    /// What the last listing says of `email`, and when that listing was made.
    fn listed(&self, email: &Email) -> (Option<Instant>, Listed) {
        let directory = self.directory.lock().expect("directory lock");
        let Some((at, users)) = directory.as_ref() else {
            return (None, Listed::Stale);
        };
        let age = at.elapsed();
        let listed = match find(users, email) {
            Some(user) if age < DIRECTORY_FOR => user
                .id
                .and_then(|id| OnePasswordUserId::parse(&id).ok())
                .map_or(Listed::Stale, Listed::Known),
            None if age < self.miss_relist_every => Listed::Unknown,
            _ => Listed::Stale,
        };
        (Some(*at), listed)
    }

    /// The user with `email` in a listing made since the one made at `seen` (`None`: no
    /// listing then), or `None` when there is no such listing.
    fn in_listing_newer_than(&self, seen: Option<Instant>, email: &Email) -> Option<Option<User>> {
        match self.directory.lock().expect("directory lock").as_ref() {
            Some((at, users)) if Some(*at) != seen => Some(find(users, email)),
            _ => None,
        }
    }

    fn remember(&self, users: Vec<User>) {
        *self.directory.lock().expect("directory lock") = Some((Instant::now(), users));
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
        parse(self.send_with_fresh_token(method, url, query).await?).await
    }

    async fn send_with_fresh_token(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, OpError> {
        let token = self.tokens.get(false).await?;
        let response = self.send(method.clone(), url, query, &token).await?;
        // A token can be revoked or expire early; refresh it once and try again.
        if response.status() == StatusCode::UNAUTHORIZED {
            let token = self.tokens.get(true).await?;
            return self.send(method, url, query, &token).await;
        }
        Ok(response)
    }

    /// "List users" with the caller's own parameters, answered as 1Password answered it (the
    /// Users API gateway relays it).
    pub async fn relay_list(&self, query: &[(String, String)]) -> Result<Relayed, OpError> {
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let url = self.endpoints.users.clone();
        self.relay("relay_list", &url, &query).await
    }

    /// "Get a user", answered as 1Password answered it.
    pub async fn relay_get(&self, id: &OnePasswordUserId) -> Result<Relayed, OpError> {
        let url = format!("{}/{id}", self.endpoints.users);
        self.relay("relay_get", &url, &[]).await
    }

    async fn relay(
        &self,
        endpoint: &'static str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Relayed, OpError> {
        let started = Instant::now();
        let result = match self.send_with_fresh_token(Method::GET, url, query).await {
            Ok(response) => Relayed::read(response).await,
            Err(error) => Err(error),
        };
        let error = match &result {
            Ok(relayed) if relayed.status >= 400 => Some(format!("HTTP {}", relayed.status)),
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        };
        self.metrics
            .call("onepassword", endpoint, started.elapsed(), error);
        result
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

/// What the last listing says of an email.
enum Listed {
    /// Listed recently enough to trust the id: read the user itself.
    Known(OnePasswordUserId),
    /// Absent from a listing younger than the miss interval: unknown, without asking again.
    Unknown,
    /// No listing, or one too old to answer: list again.
    Stale,
}

fn find(users: &[User], email: &Email) -> Option<User> {
    users.iter().find(|u| u.has_email(email.as_str())).cloned()
}
