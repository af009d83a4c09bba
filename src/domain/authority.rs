//! May this person take this act on this proposal now? The one place that decides it (DESIGN
//! §2: who counts as a person, nobody decides about their own account, nobody approves their
//! own request). Every path that acts on a proposal — a click, a slash command, Retry — asks
//! here, so no rule lives in a seam between two of them.

use chrono::{DateTime, Utc};

use super::decider::{Decider, Standing};
use super::lifecycle::{Action, Status, UserState};
use super::policy::{Policy, StepUp};
use super::refusal::Refusal;
use super::Email;

/// What a person asks to do to a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// An approving vote, with what it proves beyond the Slack session.
    Approve(Proof),
    Deny,
    /// Run a failed execution again, knowing what became of the user since.
    Retry(Since),
}

/// What an approving vote proves beyond the Slack session that cast it.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Proof {
    /// A click in Slack: the session is the whole proof.
    #[default]
    Click,
    /// The approver's own passkey, user verification required (DESIGN: step-up).
    Passkey,
}

/// What became of a proposal's user since it was approved, for a retry to know whether the
/// approval still stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Since {
    /// When the ledger last saw the user's state change by any path but this proposal (drift,
    /// another proposal's execution), if ever.
    pub user_changed_at: Option<DateTime<Utc>>,
    /// The user's state as 1Password shows it now, once read.
    pub state_now: Option<UserState>,
}

/// What the rules read of a proposal, for the person asking ([`Proposal::may`] fills it in).
///
/// [`Proposal::may`]: super::Proposal::may
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub action: Action,
    pub status: Status,
    pub expires_at: DateTime<Utc>,
    pub target_email: &'a Email,
    /// The user's state when the proposal was made.
    pub target_state: UserState,
    /// When it was approved (its creation while it has no approval).
    pub approved_at: DateTime<Utc>,
    /// The person asking is one of its requesters, first or folded in.
    pub asked: bool,
    /// The person asking has approved it already.
    pub approved: bool,
}

/// Whether `decider` may take `act` on the proposal described by `case` at `now` under
/// `policy`. A refusal says why in words for the person who asked.
pub fn may(
    decider: &Decider,
    act: Act,
    case: &Case,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    match act {
        Act::Approve(_) | Act::Deny => {
            if case.status != Status::Pending {
                return Err(Refusal::NotPending(case.status));
            }
            if now >= case.expires_at {
                return Err(Refusal::Expired(case.expires_at));
            }
        }
        Act::Retry(_) if case.status != Status::Failed => {
            return Err(Refusal::NotFailed(case.status));
        }
        Act::Retry(_) => {}
    }
    may_act_about(decider, Some(case.target_email))?;
    // A vote and a retry both put the action in motion: a requester's counts only where the
    // policy lets a requester's own command count. A requester may always deny.
    let votes = matches!(act, Act::Approve(_) | Act::Retry(_));
    if votes && case.asked && !policy.requester_counts(case.action, case.target_email, true) {
        return Err(Refusal::IsRequester(case.action));
    }
    if matches!(act, Act::Approve(_)) && case.approved {
        return Err(Refusal::AlreadyApproved);
    }
    // Checked last: whoever may not vote at all hears why, not how to prove a vote.
    if act == Act::Approve(Proof::Click) && policy.step_up(case.action) == StepUp::Passkey {
        return Err(Refusal::PasskeyNeeded(case.action));
    }
    if let Act::Retry(since) = act {
        let changed = since
            .user_changed_at
            .is_some_and(|changed| changed > case.approved_at)
            || since.state_now.is_some_and(|now| now != case.target_state);
        if changed {
            return Err(Refusal::UserChangedSinceApproval(case.action));
        }
        if now >= case.approved_at + policy.ttl(case.action) {
            return Err(Refusal::ApprovalTooOld(case.action));
        }
    }
    Ok(())
}

/// Whether `decider` is someone who may act about the user with `target` email at all, with or
/// without a proposal (the drift alert's button): a colleague of the workspace who is an
/// approver, with a readable email that is not the target's. Fails closed when either email
/// is unknown.
pub fn may_act_about(decider: &Decider, target: Option<&Email>) -> Result<(), Refusal> {
    if decider.standing != Standing::Colleague {
        return Err(Refusal::NotAColleague(decider.standing));
    }
    if !decider.is_approver {
        return Err(Refusal::NotAnApprover);
    }
    let Some(email) = &decider.email else {
        return Err(Refusal::NoEmail);
    };
    if target.is_none_or(|target| target == email) {
        return Err(Refusal::IsTarget);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{approver, at, proposal};
    use crate::domain::{FurtherRequest, Proposal, Requester, SlackUserId};

    #[test]
    fn a_requester_folded_in_may_not_approve_a_restore() {
        // Rita (U0REQ) asked first; Bob's /restore folded in.
        let mut p = proposal(Action::Restore, 2);
        p.also_requested_by.push(FurtherRequest {
            requester: Requester::SlackUser {
                slack_user_id: SlackUserId::parse("U0BOB").unwrap(),
                name: "Bob".into(),
            },
            callback_url: None,
        });
        let bob = approver("U0BOB", "bob@example.com");
        assert_eq!(
            p.may(&bob, Act::Approve(Proof::Click), &Policy::default(), at(1)),
            Err(Refusal::IsRequester(Action::Restore))
        );
    }

    #[test]
    fn a_suspend_requester_may_approve_only_when_the_policy_lets_requesters_count() {
        let p = proposal(Action::Suspend, 1);
        let rita = approver("U0REQ", "rita@example.com");
        assert_eq!(
            p.may(&rita, Act::Approve(Proof::Click), &Policy::default(), at(1)),
            Ok(())
        );
        let off = Policy::parse("[suspend]\nrequester_counts = false\n").unwrap();
        assert_eq!(
            p.may(&rita, Act::Approve(Proof::Click), &off, at(1)),
            Err(Refusal::IsRequester(Action::Suspend))
        );
    }

    #[test]
    fn a_click_alone_never_counts_where_the_policy_asks_for_a_passkey() {
        let p = proposal(Action::Restore, 2);
        let bob = approver("U0BOB", "bob@example.com");
        let policy = Policy::default();
        assert_eq!(
            p.may(&bob, Act::Approve(Proof::Click), &policy, at(1)),
            Err(Refusal::PasskeyNeeded(Action::Restore))
        );
        assert_eq!(
            p.may(&bob, Act::Approve(Proof::Passkey), &policy, at(1)),
            Ok(())
        );
    }

    #[test]
    fn a_requesters_passkey_vote_still_does_not_count() {
        let p = proposal(Action::Restore, 2);
        let rita = approver("U0REQ", "rita@example.com");
        assert_eq!(
            p.may(
                &rita,
                Act::Approve(Proof::Passkey),
                &Policy::default(),
                at(1)
            ),
            Err(Refusal::IsRequester(Action::Restore))
        );
    }

    #[test]
    fn a_requester_may_deny_their_own_request() {
        let p = proposal(Action::Restore, 2);
        let rita = approver("U0REQ", "rita@example.com");
        assert_eq!(p.may(&rita, Act::Deny, &Policy::default(), at(1)), Ok(()));
    }

    fn failed(p: &mut Proposal) {
        p.approve(
            &approver("U0BOB", "bob@example.com"),
            Proof::Click,
            &Policy::default(),
            at(1),
        )
        .unwrap();
        p.begin_attempt().unwrap();
        p.fail_execution("boom".into(), None, at(2));
    }

    #[test]
    fn a_retry_after_the_user_changed_since_the_approval_is_refused() {
        let mut p = proposal(Action::Suspend, 1);
        failed(&mut p);
        let cat = approver("U0CAT", "cat@example.com");
        let changed = Act::Retry(Since {
            user_changed_at: Some(at(3)),
            state_now: None,
        });
        assert_eq!(
            p.may(&cat, changed, &Policy::default(), at(4)),
            Err(Refusal::UserChangedSinceApproval(Action::Suspend))
        );
        let before = Act::Retry(Since {
            user_changed_at: Some(at(0)),
            state_now: Some(UserState::Active),
        });
        assert_eq!(p.may(&cat, before, &Policy::default(), at(4)), Ok(()));
    }

    #[test]
    fn a_retry_when_1password_shows_another_state_than_the_proposal_saw_is_refused() {
        let mut p = proposal(Action::Suspend, 1);
        failed(&mut p);
        let cat = approver("U0CAT", "cat@example.com");
        let suspended_meanwhile = Act::Retry(Since {
            user_changed_at: None,
            state_now: Some(UserState::Suspended),
        });
        assert_eq!(
            p.may(&cat, suspended_meanwhile, &Policy::default(), at(4)),
            Err(Refusal::UserChangedSinceApproval(Action::Suspend))
        );
    }

    #[test]
    fn a_retry_of_an_approval_older_than_the_ttl_is_refused() {
        let mut p = proposal(Action::Suspend, 1);
        failed(&mut p);
        let cat = approver("U0CAT", "cat@example.com");
        let retry = Act::Retry(Since {
            user_changed_at: None,
            state_now: None,
        });
        let policy = Policy::default();
        let late = at(1) + policy.ttl(Action::Suspend);
        assert_eq!(
            p.may(&cat, retry, &policy, late),
            Err(Refusal::ApprovalTooOld(Action::Suspend))
        );
    }
}
