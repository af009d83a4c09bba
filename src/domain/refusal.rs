//! Why a transition was refused, in words for the person who asked.

use chrono::{DateTime, Utc};

use super::decider::Standing;
use super::{Action, ProposalId, Status};

/// Why a transition was refused. The text is shown to the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("You are not an approver for countersign, so you cannot decide on this proposal.")]
    NotAnApprover,
    #[error("{}", .0.refusal())]
    NotAColleague(Standing),
    #[error("Your Slack profile shows no email, so countersign cannot check that this is not your own account. Refused.")]
    NoEmail,
    #[error("You cannot decide about your own account.")]
    IsTarget,
    #[error("{}", requester_refusal(*.0))]
    IsRequester(Action),
    #[error("You have already approved this proposal; one person counts once.")]
    AlreadyApproved,
    #[error("This proposal is already {0}; nothing was changed.")]
    NotPending(Status),
    #[error("This proposal expired at {0}; nothing was changed.")]
    Expired(DateTime<Utc>),
    #[error("Only the requester of a proposal can cancel it.")]
    NotRequester,
    #[error("Only a failed execution can be retried; this proposal is {0}.")]
    NotFailed(Status),
    #[error("This proposal is {0}, not ready to execute.")]
    NotExecutable(Status),
    #[error(
        "A newer proposal ({0}) concerns this user; act on that one instead of retrying this."
    )]
    Superseded(ProposalId),
    #[error("The user's state changed since this {} was approved (drift, the 1Password console or another proposal), so the approval no longer stands. Propose it again instead of retrying.", noun(*.0))]
    UserChangedSinceApproval(Action),
    #[error("This {} was approved longer ago than its time to live, so the approval no longer stands. Propose it again instead of retrying.", noun(*.0))]
    ApprovalTooOld(Action),
    #[error("A {} vote must be confirmed with your passkey; a click alone does not count.", noun(*.0))]
    PasskeyNeeded(Action),
}

fn noun(action: Action) -> &'static str {
    match action {
        Action::Suspend => "suspension",
        Action::Restore => "restore",
    }
}

fn requester_refusal(action: Action) -> &'static str {
    match action {
        Action::Restore => "You asked for this restore; a restore needs two approvers other than its requesters (everyone who asked for it).",
        Action::Suspend => "You asked for this suspension, and the policy does not let a requester's own vote count here (requester_counts is off, or the user is protected); another approver must decide.",
    }
}
