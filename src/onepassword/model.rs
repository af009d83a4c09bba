use std::time::Duration;

use serde::Deserialize;

use crate::domain::UserState;

/// A user as the Users API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub state: UserState,
}

/// What went wrong talking to 1Password, sorted by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Worth trying again later: 429, 5xx, timeouts, connection failures.
    #[error("1Password is unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The user does not exist in the account.
    #[error("1Password has no such user")]
    NotFound,
    /// 1Password refused, and will refuse again: 400, 403, 404 on an action, bad credentials.
    #[error("1Password refused: {status} {message}")]
    Permanent { status: u16, message: String },
}

/// 1Password's error body: `{"code", "message", "details"}`.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct UserPage {
    #[serde(default)]
    pub results: Vec<User>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenResponse {
    pub access_token: String,
    #[serde(default = "default_lifetime")]
    pub expires_in: u64,
}

fn default_lifetime() -> u64 {
    900
}
