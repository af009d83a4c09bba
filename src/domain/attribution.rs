//! Attribution: who changed a user's state in 1Password, as its audit events tell it, and
//! whether the change was countersign's own execution. Pure: the ledger supplies the
//! candidates, this decides.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Action, Proposal, Status, UserState};

/// How far 1Password's clock and ours may disagree when an audit event is matched with the
/// execution that caused it.
pub const CLOCK_SKEW: Duration = Duration::minutes(2);

/// Who made a change, from where and when, as an audit event names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub uuid: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The session's IP address.
    pub ip: Option<String>,
    /// "City, region, country", as far as 1Password located the session.
    pub location: Option<String>,
    /// When 1Password says the change happened.
    pub at: DateTime<Utc>,
}

impl Actor {
    /// "Dana <dana@example.com>", or whatever of it is known.
    pub fn who(&self) -> String {
        match (&self.name, &self.email) {
            (Some(name), Some(email)) => format!("{name} <{email}>"),
            (Some(name), None) => name.clone(),
            (None, Some(email)) => email.clone(),
            (None, None) => self
                .uuid
                .clone()
                .unwrap_or_else(|| "an unnamed 1Password user".to_owned()),
        }
    }

    /// The ledger's actor for a record this actor caused.
    pub fn ledger_actor(&self) -> String {
        format!(
            "1password:{}",
            self.email
                .as_deref()
                .or(self.uuid.as_deref())
                .unwrap_or("unknown")
        )
    }
}

/// The state an audit event's action leaves its user in: 1Password's `suspend` and
/// `reactive` (sic).
pub fn state_after(action: &str) -> Option<UserState> {
    match action {
        "suspend" => Some(UserState::Suspended),
        "reactive" => Some(UserState::Active),
        _ => None,
    }
}

/// Whether `proposal`'s execution is the change an audit event at `at` to `to` reports: the
/// same target state, a call made (executing, executed, or failed after a call that may have
/// gone through), approved before the event and not finished long before it.
pub fn is_own_execution(proposal: &Proposal, to: UserState, at: DateTime<Utc>) -> bool {
    let called = matches!(
        proposal.status,
        Status::Executing | Status::Executed | Status::Failed
    ) && proposal.execution.attempts > 0;
    let approved_before = proposal
        .decided_at()
        .is_some_and(|approved| approved <= at + CLOCK_SKEW);
    let not_long_done = proposal
        .execution
        .at
        .is_none_or(|done| done >= at - CLOCK_SKEW);
    called && target_of(proposal.action) == to && approved_before && not_long_done
}

fn target_of(action: Action) -> UserState {
    match action {
        Action::Suspend => UserState::Suspended,
        Action::Restore => UserState::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use crate::domain::Outcome;

    fn executed_suspension(at: DateTime<Utc>) -> Proposal {
        let mut p = fixtures::proposal(Action::Suspend, 1);
        p.status = Status::Executed;
        p.execution.attempts = 1;
        p.execution.outcome = Some(Outcome::Suspended);
        p.execution.at = Some(at);
        p.created_at = at - Duration::seconds(5);
        p
    }

    #[test]
    fn reactive_is_1passwords_word_for_a_reactivation() {
        assert_eq!(state_after("reactive"), Some(UserState::Active));
        assert_eq!(state_after("suspend"), Some(UserState::Suspended));
        assert_eq!(state_after("join"), None);
    }

    #[test]
    fn a_suspension_reported_as_countersign_executed_it_is_its_own() {
        let now = Utc::now();
        let p = executed_suspension(now);
        assert!(is_own_execution(&p, UserState::Suspended, now));
        assert!(!is_own_execution(&p, UserState::Active, now));
    }

    #[test]
    fn a_change_long_after_the_execution_is_not_its_own() {
        let now = Utc::now();
        let p = executed_suspension(now - Duration::hours(1));
        assert!(!is_own_execution(&p, UserState::Suspended, now));
    }

    #[test]
    fn the_actor_is_named_by_name_and_email() {
        let actor = Actor {
            uuid: Some("U".into()),
            name: Some("Dana".into()),
            email: Some("dana@example.com".into()),
            ip: Some("203.0.113.4".into()),
            location: None,
            at: Utc::now(),
        };
        assert_eq!(actor.who(), "Dana <dana@example.com>");
        assert_eq!(actor.ledger_actor(), "1password:dana@example.com");
    }
}
