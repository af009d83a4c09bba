//! The proposal state machine, as a specification.

use super::*;
use crate::domain::authority::{Proof, Since};
use crate::domain::fixtures::{approver, at, proposal};
use crate::domain::StepUp;

/// The default policy with restores decided by click (step-up is specified in `authority`).
fn policy() -> Policy {
    Policy {
        restore_step_up: StepUp::None,
        ..Policy::default()
    }
}

#[test]
fn one_approval_approves_a_suspend() {
    let mut p = proposal(Action::Suspend, 1);
    assert_eq!(
        p.approve(
            &approver("U0BOB", "bob@example.com"),
            Proof::Click,
            &policy(),
            at(1)
        ),
        Ok(Vote::Approved)
    );
    assert_eq!(p.status, Status::Approved);
}

#[test]
fn a_restore_stays_pending_after_its_first_approval() {
    let mut p = proposal(Action::Restore, 2);
    let vote = p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    );
    assert_eq!(
        vote,
        Ok(Vote::Counted {
            count: 1,
            required: 2
        })
    );
    assert_eq!(p.status, Status::Pending);
    assert_eq!(
        p.approve(
            &approver("U0CAT", "cat@example.com"),
            Proof::Click,
            &policy(),
            at(2)
        ),
        Ok(Vote::Approved)
    );
}

#[test]
fn the_same_person_counts_once() {
    let mut p = proposal(Action::Restore, 2);
    let bob = approver("U0BOB", "bob@example.com");
    p.approve(&bob, Proof::Click, &policy(), at(1)).unwrap();
    assert_eq!(
        p.approve(&bob, Proof::Click, &policy(), at(2)),
        Err(Refusal::AlreadyApproved)
    );
    assert_eq!(p.approvals.len(), 1);
}

#[test]
fn the_target_cannot_approve_or_deny() {
    let mut p = proposal(Action::Suspend, 1);
    let alice = approver("U0ALI", "ALICE@example.com");
    assert_eq!(
        p.approve(&alice, Proof::Click, &policy(), at(1)),
        Err(Refusal::IsTarget)
    );
    let reason = Reason::parse("this is not me at all").unwrap();
    assert_eq!(
        p.deny(&alice, reason, &policy(), at(1)),
        Err(Refusal::IsTarget)
    );
    assert_eq!(p.status, Status::Pending);
}

#[test]
fn a_decider_without_an_email_is_refused() {
    let mut p = proposal(Action::Suspend, 1);
    let mut bob = approver("U0BOB", "bob@example.com");
    bob.email = None;
    assert_eq!(
        p.approve(&bob, Proof::Click, &policy(), at(1)),
        Err(Refusal::NoEmail)
    );
}

#[test]
fn a_non_approver_is_refused() {
    let mut p = proposal(Action::Suspend, 1);
    let mut eve = approver("U0EVE", "eve@example.com");
    eve.is_approver = false;
    assert_eq!(
        p.approve(&eve, Proof::Click, &policy(), at(1)),
        Err(Refusal::NotAnApprover)
    );
    assert!(p.approvals.is_empty());
}

#[test]
fn the_requester_of_a_restore_never_counts() {
    let mut p = proposal(Action::Restore, 2);
    assert_eq!(
        p.approve(
            &approver("U0REQ", "rita@example.com"),
            Proof::Click,
            &policy(),
            at(1)
        ),
        Err(Refusal::IsRequester(Action::Restore))
    );
}

#[test]
fn a_denial_is_a_veto() {
    let mut p = proposal(Action::Restore, 2);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    let reason = Reason::parse("the laptop is still missing").unwrap();
    p.deny(
        &approver("U0CAT", "cat@example.com"),
        reason,
        &policy(),
        at(2),
    )
    .unwrap();
    assert_eq!(p.status, Status::Denied);
    let late = p.approve(
        &approver("U0DAN", "dan@example.com"),
        Proof::Click,
        &policy(),
        at(3),
    );
    assert_eq!(late, Err(Refusal::NotPending(Status::Denied)));
}

#[test]
fn an_expired_proposal_cannot_be_approved() {
    let mut p = proposal(Action::Suspend, 1);
    let vote = p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(30),
    );
    assert_eq!(vote, Err(Refusal::Expired(at(30))));
    p.expire(at(30)).unwrap();
    assert_eq!(p.status, Status::Expired);
}

#[test]
fn only_the_requester_can_cancel() {
    let mut p = proposal(Action::Suspend, 1);
    let other = Requester::Integration {
        name: "tines".into(),
        token_id: "t1".into(),
    };
    assert_eq!(p.cancel(&other), Err(Refusal::NotRequester));
    p.cancel(&p.requester.clone()).unwrap();
    assert_eq!(p.status, Status::Cancelled);
}

#[test]
fn execution_runs_only_once_approved() {
    let mut p = proposal(Action::Suspend, 1);
    assert_eq!(
        p.begin_attempt(),
        Err(Refusal::NotExecutable(Status::Pending))
    );
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    assert_eq!(p.begin_attempt(), Ok(1));
    assert_eq!(p.status, Status::Executing);
}

#[test]
fn every_attempt_counts_including_those_after_a_transient_failure() {
    let mut p = proposal(Action::Suspend, 1);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    p.begin_attempt().unwrap();
    assert_eq!(p.begin_attempt(), Ok(2));
    assert_eq!(p.execution.attempts, 2);
}

#[test]
fn an_executed_proposal_attempts_no_more() {
    let mut p = proposal(Action::Suspend, 1);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    p.begin_attempt().unwrap();
    p.finish_execution(Outcome::Suspended, UserState::Suspended, at(2));
    assert_eq!(
        p.begin_attempt(),
        Err(Refusal::NotExecutable(Status::Executed))
    );
}

#[test]
fn an_approved_proposal_is_superseded_by_a_newer_decision_and_names_it() {
    let mut p = proposal(Action::Restore, 2);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    p.approve(
        &approver("U0CAT", "cat@example.com"),
        Proof::Click,
        &policy(),
        at(2),
    )
    .unwrap();
    let newer = ProposalId::new();
    p.supersede(newer, at(3)).unwrap();
    assert_eq!(p.status, Status::Superseded);
    assert_eq!(p.superseded_by, Some(newer));
    assert_eq!(p.callback_event(), None, "no callback_url in the fixture");
}

#[test]
fn a_pending_proposal_cannot_be_superseded() {
    let mut p = proposal(Action::Suspend, 1);
    assert_eq!(
        p.supersede(ProposalId::new(), at(1)),
        Err(Refusal::NotExecutable(Status::Pending))
    );
}

#[test]
fn the_system_denies_a_pending_restore_without_a_slack_user() {
    let mut p = proposal(Action::Restore, 2);
    let reason = Reason::parse("new alert ldt:1 while the restore was pending").unwrap();
    p.deny_by_system(reason, at(1)).unwrap();
    assert_eq!(p.status, Status::Denied);
    assert_eq!(p.denial.unwrap().slack_user_id, None);
}

#[test]
fn a_failed_execution_can_be_retried_by_an_approver() {
    let mut p = proposal(Action::Suspend, 1);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    p.begin_attempt().unwrap();
    p.fail_execution("403 no_owner_remain".into(), None, at(2));
    p.retry(
        &approver("U0CAT", "cat@example.com"),
        Since::default(),
        &policy(),
        at(3),
    )
    .unwrap();
    assert_eq!(p.status, Status::Approved);
}

#[test]
fn the_reminder_is_due_half_way_to_expiry() {
    let p = proposal(Action::Suspend, 1);
    assert!(!p.reminder_due(at(14)));
    assert!(p.reminder_due(at(15)));
}

#[test]
fn a_retry_follows_the_decision_identity_rules() {
    let mut p = proposal(Action::Suspend, 1);
    p.approve(
        &approver("U0BOB", "bob@example.com"),
        Proof::Click,
        &policy(),
        at(1),
    )
    .unwrap();
    p.begin_attempt().unwrap();
    p.fail_execution("500".into(), None, at(2));
    assert_eq!(
        p.retry(
            &approver("U0ALI", "alice@example.com"),
            Since::default(),
            &policy(),
            at(3)
        ),
        Err(Refusal::IsTarget)
    );
    let mut no_email = approver("U0CAT", "cat@example.com");
    no_email.email = None;
    assert_eq!(
        p.retry(&no_email, Since::default(), &policy(), at(3)),
        Err(Refusal::NoEmail)
    );
    assert_eq!(p.status, Status::Failed);
}
