//! The words of a proposal's life: what it asks (`Action`), where it stands (`Status`), the
//! user's state as 1Password reports it, how confident the alert was, and how an execution
//! ended (`Outcome`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Suspend,
    Restore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Suspend => "suspend",
            Action::Restore => "restore",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "suspend" => Ok(Action::Suspend),
            "restore" => Ok(Action::Restore),
            other => Err(format!(
                "unknown action {other:?}: expected suspend or restore"
            )),
        }
    }

    /// The 1Password state this action leaves the user in.
    pub fn target_state(self) -> UserState {
        match self {
            Action::Suspend => UserState::Suspended,
            Action::Restore => UserState::Active,
        }
    }
}

/// Where a proposal stands. `superseded`: a newer decision about the same 1Password user was
/// approved after this one, which then made no call (`superseded_by` names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Executing,
    Executed,
    Denied,
    Expired,
    Cancelled,
    Failed,
    /// A newer decision about the same user was approved first; this one made no call.
    Superseded,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Approved,
        Status::Executing,
        Status::Executed,
        Status::Denied,
        Status::Expired,
        Status::Cancelled,
        Status::Failed,
        Status::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Executing => "executing",
            Status::Executed => "executed",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Failed => "failed",
            Status::Superseded => "superseded",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown status {raw:?}"))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 1Password user's state as the Users API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserState {
    Active,
    Suspended,
    #[serde(other)]
    StateUnspecified,
}

impl UserState {
    /// The Users API's name for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "ACTIVE",
            UserState::Suspended => "SUSPENDED",
            UserState::StateUnspecified => "STATE_UNSPECIFIED",
        }
    }

    /// Reads a state as the Users API names it; any other name is `STATE_UNSPECIFIED`.
    pub fn parse(name: &str) -> Self {
        match name {
            "ACTIVE" => UserState::Active,
            "SUSPENDED" => UserState::Suspended,
            _ => UserState::StateUnspecified,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Suspended,
    Reactivated,
    AlreadySuspended,
    AlreadyActive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Suspended => "suspended",
            Outcome::Reactivated => "reactivated",
            Outcome::AlreadySuspended => "already_suspended",
            Outcome::AlreadyActive => "already_active",
        }
    }

    /// What executing `action` means when 1Password already shows `state` before we act.
    pub fn already(action: Action, state: UserState) -> Option<Outcome> {
        match (action, state) {
            (Action::Suspend, UserState::Suspended) => Some(Outcome::AlreadySuspended),
            (Action::Restore, UserState::Active) => Some(Outcome::AlreadyActive),
            _ => None,
        }
    }

    pub fn done(action: Action) -> Outcome {
        match action {
            Action::Suspend => Outcome::Suspended,
            Action::Restore => Outcome::Reactivated,
        }
    }
}
