//! Step-up: where the policy asks for it, an approving vote counts only with the approver's own
//! passkey (WebAuthn, user verification required), so a hijacked Slack session cannot cast it.
//! Enrollment is rooted outside Slack: an operator at the host makes a one-time link
//! (`countersign passkey invite`). A vote link is offered to the clicker in Slack; the page it
//! opens runs the assertion, and the vote is recorded with every check re-run at that moment.
//! Links, ceremonies and credentials live in the ledger, so any replica serves any page.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
    WebauthnError,
};

use super::decisions::{self, DecisionError, VoteProof};
pub use super::relying_party::Passkeys;
use super::state::AppState;
use crate::domain::{Announcement, Decider, Proposal, Refusal, SlackUserId, Vote};
use crate::ledger::{EventKind, Job, Ledger, LinkPurpose, PasskeyLink, StoredPasskey, Tx};

/// How long an enrollment link lives.
pub const ENROLL_LINK_FOR: Duration = Duration::minutes(15);
/// How long a vote link lives.
pub const VOTE_LINK_FOR: Duration = Duration::minutes(5);
/// Ceremonies a link may start before it opens nothing.
const MAX_ATTEMPTS: i64 = 5;

/// Why a page counts nothing. The text is shown on the page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("This link is not one countersign made.")]
    Unknown,
    #[error("This link was already used; ask for a new one.")]
    Used,
    #[error("This link expired; ask for a new one.")]
    Expired,
    #[error("This link was tried too many times; ask for a new one.")]
    TooManyAttempts,
    #[error("Start again from this page: the passkey's answer came without a question asked.")]
    NoCeremony,
    #[error("The passkey did not verify ({0}); nothing was recorded.")]
    NotVerified(String),
    #[error("This passkey's signature counter went backwards, as a cloned passkey's would; nothing was recorded and the audit channel is told.")]
    PossiblyCloned,
    #[error("{0}")]
    Refused(String),
    #[error("countersign could not read or record that; nothing was changed. Try again.")]
    Storage(#[from] sqlx::Error),
    #[error("Passkeys are not set up on this countersign (PUBLIC_URL is unset).")]
    NotConfigured,
}

impl From<DecisionError> for PageError {
    fn from(error: DecisionError) -> Self {
        match error {
            DecisionError::Storage(error) => PageError::Storage(error),
            other => PageError::Refused(other.to_string()),
        }
    }
}

fn passkeys(state: &AppState) -> Result<&Arc<Passkeys>, PageError> {
    state.passkeys.as_ref().ok_or(PageError::NotConfigured)
}

/// A link usable now for `purpose`, or why not.
async fn live_link(
    ledger: &Ledger,
    token: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<PasskeyLink, PageError> {
    let link = ledger
        .passkey_link(token)
        .await?
        .filter(|link| link.purpose == purpose)
        .ok_or(PageError::Unknown)?;
    if link.used {
        return Err(PageError::Used);
    }
    if link.expires_at <= now {
        return Err(PageError::Expired);
    }
    if link.attempts >= MAX_ATTEMPTS {
        return Err(PageError::TooManyAttempts);
    }
    Ok(link)
}

/// A stable WebAuthn user handle for a Slack user (the handle must not be personal data).
fn user_handle(slack_user_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("countersign:slack:{slack_user_id}").as_bytes(),
    )
}

fn decode<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, PageError> {
    serde_json::from_str(raw).map_err(|e| PageError::Storage(sqlx::Error::Decode(Box::new(e))))
}

/// The authenticator's model (AAGUID) from a verified registration, when it gives one (not
/// all zeros, as privacy-minded authenticators send).
fn aaguid(credential: &RegisterPublicKeyCredential) -> Option<String> {
    use serde_cbor_2::Value;
    let object: Value =
        serde_cbor_2::from_slice(credential.response.attestation_object.as_ref()).ok()?;
    let Value::Map(entries) = object else {
        return None;
    };
    let Some(Value::Bytes(auth_data)) = entries.get(&Value::Text("authData".into())) else {
        return None;
    };
    // rpIdHash (32) · flags (1) · signCount (4) · AAGUID (16), when attested data is present.
    const ATTESTED: u8 = 0x40;
    let attested = auth_data.get(32).is_some_and(|flags| flags & ATTESTED != 0);
    let aaguid = auth_data.get(37..53).filter(|_| attested)?;
    let id = Uuid::from_slice(aaguid).ok()?;
    (!id.is_nil()).then(|| id.to_string())
}

/// A credential id as WebAuthn's JSON spells it: base64url without padding.
fn credential_id(id: &CredentialID) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_ref())
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("WebAuthn state serializes")
}

fn live_passkeys(stored: &[StoredPasskey]) -> Result<Vec<(String, Passkey)>, PageError> {
    stored
        .iter()
        .map(|s| Ok((s.id.clone(), decode::<Passkey>(&s.passkey)?)))
        .collect()
}

/// Keeps a started ceremony's state on its link, counting the attempt; a link that closed
/// meanwhile starts nothing.
async fn keep_ceremony(
    state: &AppState,
    token: &str,
    ceremony: &str,
    now: DateTime<Utc>,
) -> Result<(), PageError> {
    let mut tx = state.ledger.begin().await?;
    let started = tx
        .start_ceremony(token, ceremony, now, MAX_ATTEMPTS)
        .await?;
    tx.commit().await?;
    started.map(|_| ()).ok_or(PageError::Expired)
}

/// Takes the ceremony started on a link, once; when there is none, says why the link opens
/// nothing (or that no ceremony was started).
async fn take_ceremony(
    state: &AppState,
    tx: &mut Tx,
    token: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<(PasskeyLink, String), PageError> {
    if let Some(taken) = tx.take_ceremony(token, now).await? {
        return Ok(taken);
    }
    live_link(&state.ledger, token, purpose, now).await?;
    Err(PageError::NoCeremony)
}

/// An operator's invitation: a one-time enrollment link for `slack_user_id`, recorded.
pub async fn invite(
    ledger: &Ledger,
    passkeys: &Passkeys,
    slack_user_id: &SlackUserId,
    now: DateTime<Utc>,
) -> Result<String, sqlx::Error> {
    let expires_at = now + ENROLL_LINK_FOR;
    let mut tx = ledger.begin().await?;
    let token = tx
        .create_passkey_link(
            LinkPurpose::Enroll,
            slack_user_id.as_str(),
            None,
            now,
            expires_at,
        )
        .await?;
    let payload =
        json!({"slack_user_id": slack_user_id, "expires_at": crate::ledger::timestamp(expires_at)});
    tx.append(None, EventKind::PasskeyInvited, "cli", payload, now)
        .await?;
    tx.commit().await?;
    Ok(passkeys.link(LinkPurpose::Enroll, &token))
}

/// Who an enrollment link enrolls, for its page.
pub async fn enrollment(state: &AppState, token: &str) -> Result<PasskeyLink, PageError> {
    passkeys(state)?;
    live_link(&state.ledger, token, LinkPurpose::Enroll, Utc::now()).await
}

/// The registration options for the browser; the ceremony's state is kept on the link.
pub async fn enrollment_options(
    state: &AppState,
    token: &str,
) -> Result<CreationChallengeResponse, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let link = live_link(&state.ledger, token, LinkPurpose::Enroll, now).await?;
    let existing = live_passkeys(&state.ledger.passkeys_of(&link.slack_user_id).await?)?;
    let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
    let (options, registration) = passkeys
        .webauthn()
        .start_passkey_registration(
            user_handle(&link.slack_user_id),
            &link.slack_user_id,
            &link.slack_user_id,
            Some(exclude),
        )
        .map_err(|e| PageError::NotVerified(e.to_string()))?;
    keep_ceremony(state, token, &encode(&registration), now).await?;
    Ok(options)
}

/// The browser's new credential: verified against the ceremony (once) and kept as the link's
/// Slack user's passkey. Returns the credential id.
pub async fn finish_enrollment(
    state: &AppState,
    token: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<String, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let (link, ceremony) = take_ceremony(state, &mut tx, token, LinkPurpose::Enroll, now).await?;
    if link.purpose != LinkPurpose::Enroll {
        return Err(PageError::Unknown);
    }
    let registration: PasskeyRegistration = decode(&ceremony)?;
    let verified = passkeys
        .webauthn()
        .finish_passkey_registration(credential, &registration);
    let passkey = match verified {
        Ok(passkey) => passkey,
        Err(error) => {
            // The challenge is spent either way.
            tx.commit().await?;
            return Err(PageError::NotVerified(error.to_string()));
        }
    };
    let id = credential_id(passkey.cred_id());
    let aaguid = aaguid(credential);
    tx.insert_passkey(
        &id,
        &link.slack_user_id,
        &encode(&passkey),
        aaguid.as_deref(),
        now,
    )
    .await?;
    tx.use_passkey_link(token, now).await?;
    let payload =
        json!({"credential_id": id, "slack_user_id": link.slack_user_id, "aaguid": aaguid});
    let actor = format!("slack:{}", link.slack_user_id);
    tx.append(None, EventKind::PasskeyEnrolled, &actor, payload, now)
        .await?;
    tx.commit().await?;
    tracing::info!(slack_user_id = %link.slack_user_id, "passkey enrolled");
    Ok(id)
}

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
    let owned = live_passkeys(&state.ledger.passkeys_of(&link.slack_user_id).await?)?;
    if owned.is_empty() {
        return Err(PageError::Refused(
            "You have no passkey any more; ask an operator for an enrollment link.".into(),
        ));
    }
    let credentials: Vec<Passkey> = owned.into_iter().map(|(_, p)| p).collect();
    let (options, authentication) = passkeys
        .webauthn()
        .start_passkey_authentication(&credentials)
        .map_err(|e| PageError::NotVerified(e.to_string()))?;
    keep_ceremony(state, token, &encode(&authentication), now).await?;
    Ok(options)
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
    let authentication: PasskeyAuthentication = decode(&ceremony)?;
    let verified = passkeys
        .webauthn()
        .finish_passkey_authentication(assertion, &authentication);
    let result = match verified {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            let payload = json!({
                "slack_user_id": link.slack_user_id, "proposal_id": proposal_id,
                "credential_id": assertion.id, "why": "signature counter did not advance",
            });
            let actor = format!("slack:{}", link.slack_user_id);
            tx.append(
                Some(proposal_id),
                EventKind::PasskeyRefused,
                &actor,
                payload,
                now,
            )
            .await?;
            // A cloned or replayed credential is the security team's business at once.
            let fact = Announcement::PossiblyClonedPasskey {
                by: user.clone(),
                credential_id: assertion.id.clone(),
            };
            tx.enqueue(proposal_id, Job::Audit { fact }, now).await?;
            tx.commit().await?;
            state.wake_worker();
            return Err(PageError::PossiblyCloned);
        }
        Err(error) => {
            tx.commit().await?;
            return Err(PageError::NotVerified(error.to_string()));
        }
    };
    if !result.user_verified() {
        tx.commit().await?;
        return Err(PageError::NotVerified(
            "user verification was not performed".into(),
        ));
    }
    let credential_id = credential_id(result.cred_id());
    let Some(stored) = owned.iter().find(|s| s.id == credential_id) else {
        tx.commit().await?;
        return Err(PageError::NotVerified("not one of your passkeys".into()));
    };
    let mut passkey: Passkey = decode(&stored.passkey)?;
    passkey.update_credential(&result);
    tx.update_passkey(&credential_id, &encode(&passkey), now)
        .await?;
    let proposal = tx.proposal(proposal_id).await?.ok_or(PageError::Unknown)?;
    if proposal.action != action {
        return Err(PageError::Unknown);
    }
    let proof = VoteProof::Passkey {
        credential_id,
        user_verified: result.user_verified(),
    };
    let recorded =
        decisions::record_approval(state, &mut tx, proposal, &decider, &proof, now).await;
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
