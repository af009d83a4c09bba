//! Where the Users API is and who we are to it: the settings, and the URLs built from them.

use std::time::Duration;

use crate::domain::AccountId;

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
    pub(super) fn of(config: &OnePasswordConfig) -> Self {
        let base = config.base_url.trim_end_matches('/');
        let version = config.api_version.trim_matches('/');
        Self {
            token: format!("{base}/{version}/users/oauth2/token"),
            revoke: format!("{base}/{version}/users/oauth2/revoke"),
            users: format!("{base}/{version}/accounts/{}/users", config.account),
        }
    }
}
