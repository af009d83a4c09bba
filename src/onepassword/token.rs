//! The OAuth 2.0 client-credentials token: fetched with HTTP Basic client authentication,
//! cached until shortly before it expires, and revoked at shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::Mutex;

use super::config::{Endpoints, OnePasswordConfig};
use super::model::{OpError, TokenResponse};
use super::wire::{parse, transport_error};
use crate::metrics::Metrics;

/// Refresh this long before the token's stated expiry, so a request never carries a token
/// that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

/// Where the token comes from and the one cached, shared by every call of the client.
pub(super) struct Tokens {
    http: reqwest::Client,
    token_url: String,
    revoke_url: String,
    client_id: String,
    client_secret: String,
    cached: Mutex<Option<CachedToken>>,
    metrics: Arc<Metrics>,
}

impl Tokens {
    pub(super) fn new(
        http: reqwest::Client,
        config: &OnePasswordConfig,
        endpoints: &Endpoints,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            token_url: endpoints.token.clone(),
            revoke_url: endpoints.revoke.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            cached: Mutex::new(None),
            metrics,
        }
    }

    /// The cached token, or a fresh one when it is due (or `force_refresh`: 1Password said 401).
    pub(super) async fn get(&self, force_refresh: bool) -> Result<String, OpError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            if !force_refresh && Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let started = Instant::now();
        let fetched = self.fetch().await;
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
    async fn fetch(&self) -> Result<TokenResponse, OpError> {
        let response = self
            .http
            .post(self.token_url.as_str())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(transport_error)?;
        match response.status() {
            status @ (StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN) => {
                Err(OpError::Permanent {
                    status: status.as_u16(),
                    code: None,
                    message: "the OAuth client credentials were refused (check OP_CLIENT_ID and OP_CLIENT_SECRET)".into(),
                })
            }
            _ => parse(response).await,
        }
    }

    /// Revokes the cached token, if there is one. Returns whether a token was revoked.
    pub(super) async fn revoke(&self) -> Result<bool, OpError> {
        let Some(token) = self.cached.lock().await.take() else {
            return Ok(false);
        };
        let started = Instant::now();
        let result = self.send_revoke(&token.value).await;
        let error = result.as_ref().err().map(ToString::to_string);
        self.metrics
            .call("onepassword", "revoke", started.elapsed(), error);
        result.map(|()| true)
    }

    async fn send_revoke(&self, token: &str) -> Result<(), OpError> {
        let response = self
            .http
            .post(self.revoke_url.as_str())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(OpError::Permanent {
            status: status.as_u16(),
            code: None,
            message: "the token could not be revoked".into(),
        })
    }
}
