//! Step-up: where the policy asks for it, an approving vote counts only with the approver's own
//! passkey (WebAuthn, user verification required), so a hijacked Slack session cannot cast it.
//! The Approve click is answered with a one-time link; the page it opens runs the assertion, and
//! the vote is recorded with every check re-run at that moment. Links, ceremonies and
//! credentials live in the ledger, so any replica serves any page.

use chrono::{Duration, Utc};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

pub use super::ceremonies::PageError;
use super::ceremonies::{live_link, passkeys, start_assertion, take_ceremony, verify_assertion};
use super::decisions::{self, DecisionError, VoteProof};
pub use super::relying_party::Passkeys;
use super::state::AppState;
use crate::domain::{Decider, Proposal, Refusal, SlackUserId, Vote};
use crate::ledger::{LinkPurpose, PasskeyLink};

/// How long a vote link lives.
pub const VOTE_LINK_FOR: Duration = Duration::minutes(5);

/// What an Approve click that needs a passkey is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A one-time link to confirm the vote with a passkey.
    Link(String),
    /// The clicker has no passkey yet.
    NoPasskey,
}

/// Offers `decider` a one-time link to cast their vote on `proposal` with a passkey.
pub async fn offer_vote(
    state: &AppState,
    proposal: &Proposal,
    decider: &Decider,
) -> Result<Offer, PageError> {
    let passkeys = passkeys(state)?;
    let user = decider.slack_user_id.as_str();
    if state.ledger.passkeys_of(user).await?.is_empty() {
        return Ok(Offer::NoPasskey);
    }
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let vote_on = Some((proposal.id, proposal.action));
    let token = tx
        .create_passkey_link(LinkPurpose::Vote, user, vote_on, now, now + VOTE_LINK_FOR)
        .await?;
    tx.commit().await?;
    Ok(Offer::Link(passkeys.link(LinkPurpose::Vote, &token)))
}

/// What a vote link is for, for its page: the link and the proposal as it is now.
pub async fn vote(state: &AppState, token: &str) -> Result<(PasskeyLink, Proposal), PageError> {
    passkeys(state)?;
    let link = live_link(&state.ledger, token, LinkPurpose::Vote, Utc::now()).await?;
    let (id, _) = link.vote_on.ok_or(PageError::Unknown)?;
    let proposal = state.ledger.proposal(id).await?.ok_or(PageError::Unknown)?;
    Ok((link, proposal))
}

/// The assertion options, limited to the link's Slack user's passkeys.
pub async fn vote_options(
    state: &AppState,
    token: &str,
) -> Result<RequestChallengeResponse, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let link = live_link(&state.ledger, token, LinkPurpose::Vote, now).await?;
    start_assertion(state, passkeys, token, &link.slack_user_id, now).await
}

/// The browser's assertion: verified against the ceremony (once) and the link's Slack user's
/// passkeys; then the vote is recorded as a click would be, with every check re-run now.
pub async fn finish_vote(
    state: &AppState,
    token: &str,
    assertion: &PublicKeyCredential,
) -> Result<(Proposal, Vote), PageError> {
    let passkeys = passkeys(state)?;
    let link = state
        .ledger
        .passkey_link(token)
        .await?
        .filter(|l| l.purpose == LinkPurpose::Vote)
        .ok_or(PageError::Unknown)?;
    let (proposal_id, action) = link.vote_on.ok_or(PageError::Unknown)?;
    let user = SlackUserId::parse(&link.slack_user_id).map_err(|_| PageError::Unknown)?;
    // Who the approver is now (policy, workspace, email), read from Slack before the write lock.
    let decider = state
        .directory
        .decider(&state.policy, &user)
        .await
        .map_err(|_| PageError::Refused("countersign could not read your Slack profile, so it refused (fail closed). Try again.".into()))?;
    let owned = state.ledger.passkeys_of(&link.slack_user_id).await?;

    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let (_, ceremony) = take_ceremony(state, &mut tx, token, LinkPurpose::Vote, now).await?;
    let verified = verify_assertion(
        passkeys,
        &mut tx,
        &user,
        &owned,
        &ceremony,
        assertion,
        Some(proposal_id),
        now,
    )
    .await;
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => {
            // The challenge is spent, and a possibly cloned passkey is recorded.
            tx.commit().await?;
            state.wake_worker();
            return Err(error);
        }
    };
    let proposal = tx.proposal(proposal_id).await?.ok_or(PageError::Unknown)?;
    if proposal.action != action {
        return Err(PageError::Unknown);
    }
    let proof = VoteProof::Passkey {
        credential_id: verified.credential_id,
        user_verified: verified.user_verified,
    };
    let recorded =
        decisions::record_approval(state, &mut tx, proposal, &decider, &proof, None, now).await;
    let (approved, vote) = match recorded {
        Ok(done) => done,
        Err(DecisionError::Refused(refusal)) => {
            // Nothing counted; the spent challenge and the counter are kept.
            tx.commit().await?;
            return Err(PageError::Refused(refused_on_page(&refusal)));
        }
        Err(other) => return Err(other.into()),
    };
    tx.use_passkey_link(token, now).await?;
    tx.commit().await?;
    state.wake_worker();
    tracing::info!(proposal_id = %proposal_id, approver = %user, ?vote, "passkey-verified approval recorded");
    Ok((approved, vote))
}

fn refused_on_page(refusal: &Refusal) -> String {
    format!("Your vote was not counted: {refusal}")
}
