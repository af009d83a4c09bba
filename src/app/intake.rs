//! Intake: turning a request to act on a user (from automation or Slack) into a pending
//! proposal, its `proposal.created` event and the job that posts its card, in one transaction.
//! Duplicates fold in (DESIGN §2 "Dedupe"), keyed on the resolved 1Password user id, so a
//! request by email and one by id for the same person land on the same proposal.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::app::decisions::{self, DecisionError};
use crate::app::state::AppState;
use crate::domain::{
    Action, Announcement, CallbackUrl, Decider, Email, Evidence, Execution, Folded,
    OnePasswordUserId, Proposal, ProposalId, Reason, Requester, Source, Status, Target,
};
use crate::ledger::{EventKind, Job, Tx};
use crate::onepassword::{OpError, User};

/// How long an idempotency key is remembered.
const KEY_LIFETIME: Duration = Duration::hours(24);

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
    pub callback_url: Option<CallbackUrl>,
}

/// An `Idempotency-Key` as a token sent it, with the SHA-256 of the raw body.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub token_id: String,
    pub key: String,
    pub body_sha256: String,
}

/// What intake did with a request.
#[derive(Debug, Clone)]
pub enum Intake {
    Created(Proposal),
    /// Folded into an existing pending proposal for the same user and action.
    FoldedInto(Proposal),
    /// The same idempotency key and body as an earlier request: its proposal as it is now.
    Replayed(Proposal),
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("no 1Password user has {0}")]
    UnknownUser(String),
    /// 1Password has the user but not what countersign needs to govern them safely.
    #[error("{0}")]
    Ungovernable(String),
    #[error(transparent)]
    OnePassword(OpError),
    #[error("this Idempotency-Key was already used with a different body")]
    IdempotencyConflict,
    #[error(
        "a {action} proposal for this user is already pending ({id}); decide or cancel it first"
    )]
    OppositePending {
        id: ProposalId,
        action: &'static str,
    },
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

/// The proposal's target from 1Password's answer. Every field of a `User` is optional: an
/// email looked up stands in for one the GET left out, a missing name shows as the email, and a
/// user with no email at all cannot be proposed, because nobody could then be stopped from
/// deciding about their own account (DESIGN §1).
fn target(user: User, asked: &UserRef) -> Result<Target, IntakeError> {
    let id = user
        .id
        .as_deref()
        .and_then(|id| OnePasswordUserId::parse(id).ok())
        .or(match asked {
            UserRef::Id(id) => Some(id.clone()),
            UserRef::Email(_) => None,
        })
        .ok_or_else(|| {
            IntakeError::OnePassword(OpError::unreadable(
                "1Password answered a user without a readable id",
            ))
        })?;
    let email = match (user.email.as_deref().map(Email::parse), asked) {
        (Some(Ok(email)), _) => email,
        (_, UserRef::Email(email)) => email.clone(),
        (_, UserRef::Id(_)) => {
            return Err(IntakeError::Ungovernable(format!(
                "1Password gives the user {id} no email, so countersign cannot check that nobody decides about their own account; nothing was recorded"
            )))
        }
    };
    Ok(Target {
        display_name: user
            .display_name
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| email.to_string()),
        id,
        email,
        state: user.state,
    })
}

/// The proposal an earlier request with this key produced, if the key is known.
async fn replay(
    state: &AppState,
    tx: Option<&mut Tx>,
    key: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<Option<Proposal>, IntakeError> {
    let since = now - KEY_LIFETIME;
    let mut tx = tx;
    let remembered = match tx.as_deref_mut() {
        Some(tx) => tx.idempotency_key(&key.token_id, &key.key, since).await?,
        None => {
            state
                .ledger
                .idempotency_key(&key.token_id, &key.key, since)
                .await?
        }
    };
    let Some(remembered) = remembered else {
        return Ok(None);
    };
    if remembered.body_sha256 != key.body_sha256 {
        return Err(IntakeError::IdempotencyConflict);
    }
    // Inside a transaction, read through it: it holds the write lock, and on PostgreSQL a
    // second connection taken meanwhile could be the one everybody behind it waits for.
    Ok(match tx {
        Some(tx) => tx.proposal(remembered.proposal_id).await?,
        None => state.ledger.proposal(remembered.proposal_id).await?,
    })
}

/// Proposes an action. `requester_as_decider` is a Slack requester resolved as a decider: when
/// the policy lets a requester's own command count (DESIGN §2), their approval is recorded in
/// the same transaction as the proposal, so the two can never be separated by a crash.
pub async fn propose(
    state: &AppState,
    requester: Requester,
    new: NewProposal,
    key: Option<IdempotencyKey>,
    requester_as_decider: Option<&Decider>,
) -> Result<Intake, IntakeError> {
    // A replay answers from the ledger without asking 1Password again.
    if let Some(key) = &key {
        if let Some(proposal) = replay(state, None, key, Utc::now()).await? {
            return Ok(Intake::Replayed(proposal));
        }
    }
    let target = target(resolve(state, &new.user).await?, &new.user)?;
    let mut tx = state.ledger.begin().await?;
    let now = Utc::now();
    // Checked again inside the write transaction: two concurrent requests with one key
    // serialize here, and the second sees the first's proposal.
    if let Some(key) = &key {
        if let Some(proposal) = replay(state, Some(&mut tx), key, now).await? {
            return Ok(Intake::Replayed(proposal));
        }
    }
    let pending = match tx.pending_for(&target.id).await? {
        // Its time ran out before the sweeper got to it: expire it now rather than fold a new
        // report into a proposal nobody can approve any more.
        Some(expired) if expired.is_expired(now) => {
            decisions::record_expiry(&mut tx, expired, now)
                .await
                .map_err(|error| match error {
                    DecisionError::Storage(error) => IntakeError::Storage(error),
                    other => unreachable!("an expired pending proposal expires: {other}"),
                })?;
            None
        }
        // Containment wins: a new alert ends a pending restore and is proposed as usual.
        Some(restore) if restore.action == Action::Restore && new.action == Action::Suspend => {
            decisions::end_restore_for_new_alert(state, &mut tx, restore, &new.source, now).await?;
            None
        }
        other => other,
    };
    let intake = match pending {
        Some(pending) if pending.action == new.action => {
            fold_in(&mut tx, pending, &requester, new, now).await?
        }
        Some(pending) => {
            return Err(IntakeError::OppositePending {
                id: pending.id,
                action: pending.action.as_str(),
            });
        }
        None => {
            let created = create(&mut tx, state, target, requester, new, now).await?;
            let counts = requester_as_decider.filter(|decider| {
                state.policy.requester_counts(
                    created.action,
                    &created.target.email,
                    decider.is_approver,
                )
            });
            match counts {
                Some(decider) => {
                    let click = decisions::VoteProof::Click;
                    match decisions::record_approval(
                        state,
                        &mut tx,
                        created.clone(),
                        decider,
                        &click,
                        None,
                        now,
                    )
                    .await
                    {
                        Ok((approved, _)) => Intake::Created(approved),
                        // The domain refused (say, the requester is the target): the proposal waits.
                        Err(DecisionError::Refused(_)) => Intake::Created(created),
                        Err(DecisionError::Storage(error)) => {
                            return Err(IntakeError::Storage(error))
                        }
                        Err(DecisionError::NotFound | DecisionError::Unverified(_)) => {
                            unreachable!(
                                "the proposal was just created, and a vote asks 1Password nothing"
                            )
                        }
                    }
                }
                None => Intake::Created(created),
            }
        }
    };
    if let Some(key) = &key {
        let id = match &intake {
            Intake::Created(p) | Intake::FoldedInto(p) | Intake::Replayed(p) => p.id,
        };
        let expired = now - KEY_LIFETIME;
        tx.remember_idempotency_key(&key.token_id, &key.key, &key.body_sha256, id, now, expired)
            .await?;
    }
    tx.commit().await?;
    state.wake_worker();
    Ok(intake)
}

async fn create(
    tx: &mut Tx,
    state: &AppState,
    target: Target,
    requester: Requester,
    new: NewProposal,
    now: DateTime<Utc>,
) -> Result<Proposal, IntakeError> {
    let proposal = Proposal {
        id: ProposalId::new(),
        action: new.action,
        status: Status::Pending,
        approvals_required: state.policy.approvals_required(new.action, &target.email),
        target,
        reason: new.reason,
        requester,
        also_requested_by: vec![],
        withdrawn: vec![],
        source: new.source,
        evidence: vec![],
        evidence_not_kept: 0,
        approvals: vec![],
        denial: None,
        created_at: now,
        expires_at: now + state.policy.ttl(new.action),
        callback_url: new.callback_url,
        execution: Execution::default(),
        slack: None,
        auto_approved_by: None,
        superseded_by: None,
        incident: None,
    };
    tx.insert_proposal(&proposal, now).await?;
    let mut payload = serde_json::to_value(&proposal).expect("a proposal always serializes");
    // The ledger names a callback URL by its host and hash: the URL itself is a secret.
    payload["callback_url"] = json!(proposal.callback_url.as_ref().map(CallbackUrl::reference));
    tx.append(
        Some(proposal.id),
        EventKind::ProposalCreated,
        &proposal.requester.actor(),
        payload,
        now,
    )
    .await?;
    tx.enqueue(proposal.id, Job::PostCard, now).await?;
    let proposal = auto_approve(tx, state, proposal, now).await?;
    tracing::info!(proposal_id = %proposal.id, action = proposal.action.as_str(), "proposal created");
    Ok(proposal)
}

/// Applies an operator's auto-approve rule (DESIGN §2) if one matches this proposal's token
/// and confidence and the rule is under its hourly cap. Counted inside the write
/// transaction, so concurrent proposals cannot overrun the cap.
async fn auto_approve(
    tx: &mut Tx,
    state: &AppState,
    mut proposal: Proposal,
    now: DateTime<Utc>,
) -> Result<Proposal, IntakeError> {
    let Requester::Integration { name, .. } = &proposal.requester else {
        return Ok(proposal);
    };
    let Some(rule) = state.policy.auto_approve_rule(
        proposal.action,
        &proposal.target.email,
        name,
        proposal.source.confidence,
    ) else {
        return Ok(proposal);
    };
    let actor = format!("policy:{}", rule.name);
    let used = tx
        .approvals_by_since(&actor, now - Duration::hours(1))
        .await?;
    if used >= u64::from(rule.max_per_hour) {
        tracing::info!(proposal_id = %proposal.id, rule = %rule.name, "auto-approve cap reached; waiting for humans");
        return Ok(proposal);
    }
    proposal
        .auto_approve(&rule.name)
        .expect("a new proposal is pending");
    tx.order_decision(&proposal).await?;
    state
        .metrics
        .decided(proposal.action.as_str(), "approved", proposal.created_at);
    tx.save_proposal(&proposal, now).await?;
    let payload = json!({"rule": rule.name, "integration": rule.integration, "confidence": proposal.source.confidence});
    tx.append(
        Some(proposal.id),
        EventKind::ProposalApproved,
        &actor,
        payload,
        now,
    )
    .await?;
    tx.enqueue(proposal.id, Job::Execute, now).await?;
    crate::app::supersession::supersede_older(tx, &proposal, now).await?;
    tracing::info!(proposal_id = %proposal.id, rule = %rule.name, "auto-approved by policy");
    Ok(proposal)
}

async fn fold_in(
    tx: &mut Tx,
    mut pending: Proposal,
    requester: &Requester,
    new: NewProposal,
    now: DateTime<Utc>,
) -> Result<Intake, IntakeError> {
    let before = pending.clone();
    let callback = new.callback_url.as_ref().map(CallbackUrl::reference);
    let evidence = Evidence {
        source: new.source,
        reason: new.reason,
        at: now,
        by: Some(requester.clone()),
    };
    let payload = json!({"evidence": evidence, "requester": requester, "callback": callback});
    let fact = Announcement::EvidenceAdded {
        platform: evidence.source.platform.clone(),
        reason: evidence.reason.as_str().to_owned(),
    };
    let folded = pending
        .fold_in(evidence, new.callback_url)
        .expect("a pending proposal takes evidence");
    let kept = folded == Folded::Added;
    // A report that keeps no evidence still records a new requester (or their callback).
    let joined = pending.also_requested_by != before.also_requested_by
        || pending.callback_url != before.callback_url
        || pending.withdrawn != before.withdrawn;
    if kept || joined || folded == Folded::Counted {
        tx.save_proposal(&pending, now).await?;
    }
    if kept || joined {
        let payload = if kept {
            payload
        } else {
            json!({
                "requester": requester, "callback": callback,
                "evidence_kept": false, "repeated_alert": folded == Folded::Repeated,
            })
        };
        tx.append(
            Some(pending.id),
            EventKind::ProposalEvidenceAdded,
            &requester.actor(),
            payload,
            now,
        )
        .await?;
        tx.enqueue(pending.id, Job::UpdateCard, now).await?;
    }
    if kept {
        tx.enqueue(pending.id, Job::Announce { fact }, now).await?;
    }
    tracing::info!(proposal_id = %pending.id, ?folded, "report folded into a pending proposal");
    Ok(Intake::FoldedInto(pending))
}
