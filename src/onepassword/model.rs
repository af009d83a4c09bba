//! The Users API's wire shapes, read leniently: every field of the published `User` is
//! optional, and one odd user must never fail the page it is on.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::domain::{UserState, VendorError};

/// A user as the Users API returns it. Every field is optional in the published OpenAPI
/// document; a missing or unknown `state` reads as `STATE_UNSPECIFIED`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "unspecified", deserialize_with = "lenient_state")]
    pub state: UserState,
}

fn unspecified() -> UserState {
    UserState::StateUnspecified
}

fn lenient_state<'de, D: Deserializer<'de>>(deserializer: D) -> Result<UserState, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(UserState::StateUnspecified))
}

impl User {
    /// Whether this user's email is `email`, ignoring case; a user without one never matches.
    pub fn has_email(&self, email: &str) -> bool {
        self.email
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(email))
    }
}

/// A page of the listing. Users are kept as JSON until read one by one, so a user whose
/// fields have the wrong type is skipped instead of failing the whole page.
#[derive(Debug, Deserialize)]
pub(super) struct UserPage {
    #[serde(default)]
    pub results: Vec<Value>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

impl UserPage {
    /// The users that can be read; the count of those that could not.
    pub fn users(self) -> (Vec<User>, usize) {
        let total = self.results.len();
        let users: Vec<User> = self
            .results
            .into_iter()
            .filter_map(|value| serde_json::from_value(value).ok())
            .collect();
        let skipped = total - users.len();
        (users, skipped)
    }
}

/// The gRPC status numbers the Users API puts in an error body's `code`.
pub mod grpc {
    pub const INVALID_ARGUMENT: i64 = 3;
    pub const DEADLINE_EXCEEDED: i64 = 4;
    pub const NOT_FOUND: i64 = 5;
    pub const PERMISSION_DENIED: i64 = 7;
    pub const RESOURCE_EXHAUSTED: i64 = 8;
    pub const FAILED_PRECONDITION: i64 = 9;
    pub const ABORTED: i64 = 10;
    pub const UNIMPLEMENTED: i64 = 12;
    pub const INTERNAL: i64 = 13;
    pub const UNAVAILABLE: i64 = 14;
    pub const UNAUTHENTICATED: i64 = 16;

    /// The code an error sent with this HTTP status carries (the reference's error section:
    /// a 403 carries 7). The `code` is never the HTTP status itself.
    pub fn for_http(status: u16) -> i64 {
        match status {
            400 => INVALID_ARGUMENT,
            401 => UNAUTHENTICATED,
            403 => PERMISSION_DENIED,
            404 => NOT_FOUND,
            409 => ABORTED,
            429 => RESOURCE_EXHAUSTED,
            501 => UNIMPLEMENTED,
            503 => UNAVAILABLE,
            504 => DEADLINE_EXCEEDED,
            _ => INTERNAL,
        }
    }

    /// The Users API's error body: `{"code": <gRPC status>, "message", "details": []}`.
    pub fn error_body(code: i64, message: &str) -> serde_json::Value {
        serde_json::json!({ "code": code, "message": message, "details": [] })
    }
}

/// A refusal 1Password documents, with what a responder should do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// "The last remaining owner of an account" cannot be suspended (`no_owner_remain`).
    LastOwner,
    /// "Externally managed administrators (EAM users)" cannot be suspended.
    ExternallyManaged,
    /// Any other PermissionDenied: most often a permission missing from the OAuth app.
    PermissionDenied,
}

impl Refusal {
    fn of(status: u16, code: Option<i64>, message: &str) -> Option<Refusal> {
        let lower = message.to_ascii_lowercase();
        if lower.contains("no_owner_remain") {
            return Some(Refusal::LastOwner);
        }
        let denied = status == 403 || code == Some(grpc::PERMISSION_DENIED);
        // The reference names the restriction but not its message; match its words.
        let eam = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == "eam");
        if denied && (lower.contains("externally managed") || eam) {
            return Some(Refusal::ExternallyManaged);
        }
        denied.then_some(Refusal::PermissionDenied)
    }

    /// What the card, the callback and the ledger say.
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::LastOwner => "this user is the account's last remaining owner, and 1Password never suspends the last owner (no_owner_remain). Make another person an owner in the 1Password console, then press Retry, or contain this account another way",
            Refusal::ExternallyManaged => "this user is an externally managed administrator, and 1Password does not let the Users API suspend them. Suspend them in the identity provider that manages them, or ask an owner to act in the 1Password console",
            Refusal::PermissionDenied => "permission denied. Check that the OAuth application has the get, list, suspend and reactivate users permissions in the 1Password console",
        }
    }
}

/// What went wrong talking to 1Password, sorted by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Worth trying again later: 429, 5xx, timeouts, connection failures, or an answer that
    /// could not be read.
    #[error("1Password is unavailable: {message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
        /// 1Password answered 429: it wants fewer calls at once.
        throttled: bool,
    },
    /// The user does not exist in the account.
    #[error("1Password has no such user")]
    NotFound,
    /// 1Password refused, and will refuse again: 400, 403, bad credentials. `code` is the
    /// gRPC status of the error body, when it had one.
    #[error("1Password refused: {}", refused(*.status, *.code, .message))]
    Permanent {
        status: u16,
        code: Option<i64>,
        message: String,
    },
}

fn refused(status: u16, code: Option<i64>, message: &str) -> String {
    match Refusal::of(status, code, message) {
        Some(refusal) => format!("{} ({status} {message})", refusal.explain()),
        None => format!("{status} {message}"),
    }
}

impl OpError {
    /// The error as 1Password sent it, when 1Password refused (rather than failed to answer).
    pub fn as_vendor_error(&self) -> Option<VendorError> {
        match self {
            OpError::Permanent {
                status,
                code,
                message,
            } => Some(VendorError {
                status: *status,
                code: *code,
                message: message.clone(),
            }),
            OpError::NotFound => Some(VendorError {
                status: 404,
                code: Some(grpc::NOT_FOUND),
                message: "user not found".into(),
            }),
            OpError::Transient { .. } => None,
        }
    }

    /// Whether 1Password asked countersign to slow down (429).
    pub fn is_throttled(&self) -> bool {
        matches!(
            self,
            OpError::Transient {
                throttled: true,
                ..
            }
        )
    }

    /// The documented refusal this is, if any.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            OpError::Permanent {
                status,
                code,
                message,
            } => Refusal::of(*status, *code, message),
            _ => None,
        }
    }

    /// A permanent error of countersign's own finding (not an HTTP answer).
    pub fn unreadable(message: impl Into<String>) -> Self {
        OpError::Permanent {
            status: 200,
            code: None,
            message: message.into(),
        }
    }
}

/// 1Password's error body, `{"code": <gRPC status>, "message", "details"}`, read leniently.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub code: Option<Value>,
    #[serde(default)]
    pub message: Option<Value>,
}

impl ErrorBody {
    pub fn code(&self) -> Option<i64> {
        self.code.as_ref().and_then(Value::as_i64)
    }

    pub fn message(&self) -> Option<String> {
        match &self.message {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// The token endpoint's answer. Its `Debug` never shows the token.
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub access_token: String,
    #[serde(default = "default_lifetime")]
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

fn default_lifetime() -> u64 {
    900
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_answer_never_shows_its_token_in_debug() {
        let answer: TokenResponse =
            serde_json::from_str(r#"{"access_token": "op-secret-token", "expires_in": 900}"#)
                .unwrap();
        assert!(!format!("{answer:?}").contains("op-secret-token"));
    }

    #[test]
    fn a_user_with_only_an_id_reads_with_an_unspecified_state() {
        let user: User = serde_json::from_str(r#"{"id": "X"}"#).unwrap();
        assert_eq!(user.id.as_deref(), Some("X"));
        assert_eq!(user.state, UserState::StateUnspecified);
        assert!(user.email.is_none() && user.display_name.is_none());
    }

    #[test]
    fn an_unknown_or_null_state_reads_as_unspecified() {
        for body in [r#"{"state": "ARCHIVED"}"#, r#"{"state": null}"#] {
            let user: User = serde_json::from_str(body).unwrap();
            assert_eq!(user.state, UserState::StateUnspecified);
        }
    }

    #[test]
    fn a_user_of_the_wrong_shape_is_skipped_not_the_page() {
        let page: UserPage = serde_json::from_str(
            r#"{"results": [{"id": "A", "email": "a@example.com"}, {"id": 7}, "odd"]}"#,
        )
        .unwrap();
        let (users, skipped) = page.users();
        assert_eq!(users.len(), 1);
        assert_eq!(skipped, 2);
    }

    #[test]
    fn no_owner_remain_is_the_last_owner_refusal() {
        let error = OpError::Permanent {
            status: 403,
            code: Some(7),
            message: "no_owner_remain".into(),
        };
        assert_eq!(error.refusal(), Some(Refusal::LastOwner));
        assert!(error.to_string().contains("last remaining owner"));
    }

    #[test]
    fn an_externally_managed_admin_is_its_own_refusal() {
        let error = OpError::Permanent {
            status: 403,
            code: Some(7),
            message: "externally managed administrators cannot be suspended".into(),
        };
        assert_eq!(error.refusal(), Some(Refusal::ExternallyManaged));
        assert!(error.to_string().contains("identity provider"));
    }
}
