//! Intake: turning a request to act on a user (from automation or Slack) into a pending
//! proposal, its `proposal.created` event and the job that posts its card, in one transaction.

use chrono::Utc;

use crate::domain::{
    Action, Email, Execution, OnePasswordUserId, Proposal, ProposalId, Reason, Requester, Source,
    Status, Target,
};
use crate::ledger::{EventKind, Job};
use crate::onepassword::{OpError, User};
use crate::state::AppState;

/// Who the proposal is about, as the caller named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Email(Email),
    Id(OnePasswordUserId),
}

#[derive(Debug, Clone)]
pub struct NewProposal {
    pub action: Action,
    pub user: UserRef,
    pub reason: Reason,
    pub source: Source,
    pub callback_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no 1Password user has {0}")]
    UnknownUser(String),
    #[error(transparent)]
    OnePassword(OpError),
    #[error("the ledger could not record the proposal: {0}")]
    Storage(#[from] sqlx::Error),
}

async fn resolve(state: &AppState, user: &UserRef) -> Result<User, IntakeError> {
    let found = match user {
        UserRef::Email(email) => state.onepassword.find_by_email(email).await,
        UserRef::Id(id) => match state.onepassword.get_user(id).await {
            Err(OpError::NotFound) => Ok(None),
            other => other.map(Some),
        },
    };
    let described = || match user {
        UserRef::Email(email) => format!("the email {email}"),
        UserRef::Id(id) => format!("the id {id}"),
    };
    found
        .map_err(IntakeError::OnePassword)?
        .ok_or_else(|| IntakeError::UnknownUser(described()))
}

fn target(user: User) -> Result<Target, IntakeError> {
    let unreadable = |e: String| {
        IntakeError::OnePassword(OpError::Permanent {
            status: 200,
            message: e,
        })
    };
    Ok(Target {
        id: OnePasswordUserId::parse(&user.id).map_err(unreadable)?,
        email: Email::parse(&user.email).map_err(unreadable)?,
        display_name: user.display_name,
        state: user.state,
    })
}

pub async fn propose(
    state: &AppState,
    requester: Requester,
    new: NewProposal,
) -> Result<Proposal, IntakeError> {
    let target = target(resolve(state, &new.user).await?)?;
    let now = Utc::now();
    let proposal = Proposal {
        id: ProposalId::new(),
        action: new.action,
        status: Status::Pending,
        approvals_required: state.policy.approvals_required(new.action, &target.email),
        target,
        reason: new.reason,
        requester,
        source: new.source,
        evidence: vec![],
        approvals: vec![],
        denial: None,
        created_at: now,
        expires_at: now + state.policy.ttl(new.action),
        callback_url: new.callback_url,
        execution: Execution::default(),
        slack: None,
    };
    let mut tx = state.ledger.begin().await?;
    tx.insert_proposal(&proposal, now).await?;
    let payload = serde_json::to_value(&proposal).expect("a proposal always serializes");
    tx.append(
        Some(proposal.id),
        EventKind::ProposalCreated,
        &proposal.requester.actor(),
        payload,
        now,
    )
    .await?;
    tx.enqueue(proposal.id, Job::PostCard, now).await?;
    tx.commit().await?;
    state.wake_worker();
    tracing::info!(proposal_id = %proposal.id, action = proposal.action.as_str(), "proposal created");
    Ok(proposal)
}
