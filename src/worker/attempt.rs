//! One attempt at an approved action in 1Password, and what earlier attempts did: read the
//! user first, act only if they are not in the target state. The mutation's answer carries
//! the updated user, which is 1Password's word on the state; only an answer that does not
//! show the target state is read back. Every call is kept for the ledger, answered or not, so
//! each request to 1Password is reconstructable.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{Action, Outcome, Proposal, UserState};
use crate::onepassword::{OnePassword, OpError};

/// One call to 1Password as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Call {
    /// "GET users/{id}" or "POST users/{id}:{verb}".
    pub request: String,
    /// The user's state in 1Password's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<UserState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// 1Password answered with a refusal (not a timeout or 5xx): the call changed nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

impl Call {
    fn answered(request: String, state: UserState) -> Self {
        Self {
            request,
            state: Some(state),
            error: None,
            refused: false,
        }
    }

    fn failed(request: String, error: &OpError) -> Self {
        Self {
            request,
            state: None,
            error: Some(error.to_string()),
            refused: !matches!(error, OpError::Transient { .. }),
        }
    }

    fn is_mutation(&self) -> bool {
        self.request.starts_with("POST ")
    }

    /// A `:suspend` / `:reactivate` that 1Password did not refuse: it may have made the change
    /// even when its answer was lost.
    fn may_have_changed(&self) -> bool {
        self.is_mutation() && !self.refused
    }

    /// A mutation whose answer showed the user in `wanted`: 1Password's word that it is done.
    fn reported(&self, wanted: UserState) -> bool {
        self.is_mutation() && self.state == Some(wanted)
    }
}

/// What the ledger shows of a proposal's earlier attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct History {
    /// Every call earlier attempts recorded, stale workers' included.
    pub calls: Vec<Call>,
    /// The last attempt started and never recorded how it ended (its worker died or lost its
    /// lease): its calls may have reached 1Password unrecorded.
    pub interrupted: bool,
}

impl History {
    /// From the proposal's `execution.*` events, oldest first.
    pub fn of(events: &[(String, Value)]) -> Self {
        let mut history = History::default();
        for (kind, payload) in events {
            if let Some(calls) = payload.get("calls").and_then(Value::as_array) {
                history.calls.extend(
                    calls
                        .iter()
                        .filter_map(|c| serde_json::from_value::<Call>(c.clone()).ok()),
                );
            }
            // A stale worker's late record says nothing about how the current attempt ends.
            let stale = payload.get("stale").and_then(Value::as_bool) == Some(true);
            if !stale {
                history.interrupted = kind == "execution.started";
            }
        }
        history
    }

    /// Whether countersign's own call may already have made the change.
    fn may_have_changed(&self) -> bool {
        self.calls.iter().any(Call::may_have_changed)
    }
}

/// How an attempt ended, with every call it made.
pub(super) struct Attempt {
    pub calls: Vec<Call>,
    pub ended: Result<Done, OpError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Done {
    pub outcome: Outcome,
    pub state: UserState,
}

/// The outcome when 1Password shows the user in the target state: `suspended` / `reactivated`
/// whenever countersign's own call made (or may have made) the change, `already_*` only when
/// the user was in the target state before countersign's first call.
fn outcome_in_target_state(proposal: &Proposal, history: &History) -> Outcome {
    let action = proposal.action;
    let ours = history.may_have_changed()
        // An interrupted attempt's calls are unknown; the state countersign saw before any
        // attempt tells whether the user was already there.
        || (history.interrupted && proposal.target.state != action.target_state());
    if ours {
        Outcome::done(action)
    } else {
        Outcome::already(action, action.target_state()).unwrap_or(Outcome::done(action))
    }
}

/// When an attempt failed but 1Password's answer to one of countersign's own calls already
/// said the action is done, that is the outcome: never `failed` while 1Password reports done.
/// A read-back that shows another state is 1Password's later word and stands.
pub(super) fn reported_done(
    proposal: &Proposal,
    history: &History,
    attempt: &Attempt,
) -> Option<Done> {
    let wanted = proposal.action.target_state();
    let calls = || history.calls.iter().chain(&attempt.calls);
    let reported = calls().any(|c| c.reported(wanted));
    let last_known = calls().filter_map(|c| c.state).next_back();
    (reported && last_known == Some(wanted)).then(|| Done {
        outcome: Outcome::done(proposal.action),
        state: wanted,
    })
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Suspend => "suspend",
        Action::Restore => "reactivate",
    }
}

/// Read first, act if needed, read back. `still_ours` is asked just before the mutation: a
/// worker that stalled past its lease must not undo what the job's new holder decided.
pub(super) async fn run(
    op: &OnePassword,
    proposal: &Proposal,
    history: &History,
    still_ours: impl Fn() -> bool,
) -> Attempt {
    let id = &proposal.target.id;
    let wanted = proposal.action.target_state();
    let read = format!("GET users/{id}");
    let mut calls = vec![];
    let end = |calls: Vec<Call>, ended| Attempt { calls, ended };

    let before = match op.get_user(id).await {
        Ok(user) => user,
        Err(error) => {
            calls.push(Call::failed(read, &error));
            return end(calls, Err(error));
        }
    };
    calls.push(Call::answered(read.clone(), before.state));
    if before.state == wanted {
        let outcome = outcome_in_target_state(proposal, history);
        return end(
            calls,
            Ok(Done {
                outcome,
                state: before.state,
            }),
        );
    }

    let verb = verb(proposal.action);
    if !still_ours() {
        let lost = OpError::Transient {
            message: "this worker's lease on the job may have passed to another; it did not call 1Password".into(),
            retry_after: None,
            throttled: false,
        };
        return end(calls, Err(lost));
    }
    let request = format!("POST users/{id}:{verb}");
    let answer = match proposal.action {
        Action::Suspend => op.suspend(id).await,
        Action::Restore => op.reactivate(id).await,
    };
    match answer {
        Ok(user) if user.state == wanted => {
            calls.push(Call::answered(request, user.state));
            let outcome = Outcome::done(proposal.action);
            return end(
                calls,
                Ok(Done {
                    outcome,
                    state: user.state,
                }),
            );
        }
        Ok(user) => calls.push(Call::answered(request, user.state)),
        Err(error) => {
            calls.push(Call::failed(request, &error));
            return end(calls, Err(error));
        }
    }

    let after = match op.get_user(id).await {
        Ok(user) => user,
        Err(error) => {
            calls.push(Call::failed(read, &error));
            return end(calls, Err(error));
        }
    };
    calls.push(Call::answered(read, after.state));
    if after.state != wanted {
        let message = format!(
            "read-back shows {:?} after {verb}, expected {wanted:?}",
            after.state
        );
        return end(calls, Err(OpError::unreadable(message)));
    }
    end(
        calls,
        Ok(Done {
            outcome: Outcome::done(proposal.action),
            state: after.state,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_worker_whose_lease_may_have_passed_reads_but_never_mutates() {
        use crate::domain::{fixtures, AccountId};
        use crate::onepassword::OnePasswordConfig;
        use crate::sandbox::onepassword::FakeOnePassword;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let op = FakeOnePassword::start().await;
        let proposal = fixtures::proposal(crate::domain::Action::Suspend, 1);
        op.add_user(
            proposal.target.id.as_str(),
            "alice@example.com",
            "Alice",
            "ACTIVE",
        );
        let client = OnePassword::new(
            OnePasswordConfig {
                base_url: op.base_url.clone(),
                api_version: op.version.clone(),
                account: AccountId::parse(FakeOnePassword::ACCOUNT_ID).unwrap(),
                client_id: FakeOnePassword::CLIENT_ID.into(),
                client_secret: FakeOnePassword::CLIENT_SECRET.into(),
                timeout: std::time::Duration::from_secs(5),
            },
            Default::default(),
        );

        let attempt = run(&client, &proposal, &History::default(), || false).await;

        assert!(matches!(attempt.ended, Err(OpError::Transient { .. })));
        assert_eq!(op.mutation_count("suspend"), 0);
        assert_eq!(
            op.user_state(proposal.target.id.as_str()).as_deref(),
            Some("ACTIVE")
        );
    }

    #[test]
    fn a_started_attempt_without_an_end_is_interrupted() {
        let events = vec![
            ("execution.started".to_owned(), json!({"attempt": 1})),
            ("execution.attempt_failed".to_owned(), json!({"calls": []})),
            ("execution.started".to_owned(), json!({"attempt": 2})),
        ];
        assert!(History::of(&events).interrupted);
        assert!(!History::of(&events[..2]).interrupted);
    }

    #[test]
    fn an_answered_mutation_in_an_earlier_attempt_may_have_changed_the_user() {
        let events = vec![(
            "execution.attempt_failed".to_owned(),
            json!({"calls": [
                {"request": "GET users/X", "state": "ACTIVE"},
                {"request": "POST users/X:suspend", "state": "SUSPENDED"},
                {"request": "GET users/X", "error": "1Password is unavailable: 503"}
            ]}),
        )];
        assert!(History::of(&events).may_have_changed());
    }

    #[test]
    fn a_refused_mutation_changed_nothing() {
        let events = vec![(
            "execution.attempt_failed".to_owned(),
            json!({"calls": [{"request": "POST users/X:suspend", "error": "403", "refused": true}]}),
        )];
        assert!(!History::of(&events).may_have_changed());
    }
}
