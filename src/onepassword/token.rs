//! The OAuth 2.0 client-credentials token: fetched with HTTP Basic client authentication,
//! cached until shortly before it expires, and revoked at shutdown.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::client::{parse, transport_error, OnePassword};
use super::model::{OpError, TokenResponse};

/// Refresh this long before the token's stated expiry, so a request never carries a token
/// that dies in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

pub(super) struct CachedToken {
    value: String,
    refresh_at: Instant,
}

impl OnePassword {
    pub(super) async fn token(&self, force_refresh: bool) -> Result<String, OpError> {
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
        let response = self
            .http
            .post(self.endpoints.token.as_str())
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
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

    /// Revokes the cached access token, if there is one, so it dies with the process instead of
    /// living out its 900 s. Returns whether a token was revoked.
    pub async fn revoke_token(&self) -> Result<bool, OpError> {
        let Some(token) = self.token.lock().await.take() else {
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
            .post(self.endpoints.revoke.as_str())
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
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
