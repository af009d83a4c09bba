//! What the passkey flows share: one-time links and the WebAuthn ceremonies they run. A
//! ceremony's server state is kept on its link between the page asking for options and the
//! authenticator's answer, and taken off once; a verified assertion keeps the passkey's new
//! signature counter, and one whose counter did not advance is refused and recorded.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use webauthn_rs::prelude::{
    CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use super::decisions::DecisionError;
use super::relying_party::Passkeys;
use super::state::AppState;
use crate::domain::{Announcement, ProposalId, SlackUserId};
use crate::ledger::{EventKind, Job, Ledger, LinkPurpose, PasskeyLink, StoredPasskey, Tx};

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

pub(super) fn passkeys(state: &AppState) -> Result<&Arc<Passkeys>, PageError> {
    state.passkeys.as_ref().ok_or(PageError::NotConfigured)
}

/// A link usable now for `purpose`, or why not.
pub(super) async fn live_link(
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
pub(super) fn user_handle(slack_user_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("countersign:slack:{slack_user_id}").as_bytes(),
    )
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, PageError> {
    serde_json::from_str(raw).map_err(|e| PageError::Storage(sqlx::Error::Decode(Box::new(e))))
}

/// The authenticator's model (AAGUID) from a verified registration, when it gives one (not
/// all zeros, as privacy-minded authenticators send).
pub(super) fn aaguid(credential: &RegisterPublicKeyCredential) -> Option<String> {
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
pub(super) fn credential_id(id: &CredentialID) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_ref())
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("WebAuthn state serializes")
}

pub(super) fn live_passkeys(stored: &[StoredPasskey]) -> Result<Vec<(String, Passkey)>, PageError> {
    stored
        .iter()
        .map(|s| Ok((s.id.clone(), decode::<Passkey>(&s.passkey)?)))
        .collect()
}

/// Keeps a started ceremony's state on its link, counting the attempt; a link that closed
/// meanwhile starts nothing.
pub(super) async fn keep_ceremony(
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
pub(super) async fn take_ceremony(
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

/// A verified assertion: which passkey answered, and whether the person was verified.
pub(super) struct Verified {
    pub credential_id: String,
    pub user_verified: bool,
}

/// Verifies an assertion against a taken ceremony and `user`'s passkeys (`owned`), and keeps
/// the answering passkey's new counter, all in `tx`. A counter that did not advance (a cloned
/// passkey) is recorded and, for a vote on a proposal, announced to the security team. On an
/// error the caller commits `tx` all the same: the challenge is spent.
#[allow(clippy::too_many_arguments)]
pub(super) async fn verify_assertion(
    passkeys: &Passkeys,
    tx: &mut Tx,
    user: &SlackUserId,
    owned: &[StoredPasskey],
    ceremony: &str,
    assertion: &PublicKeyCredential,
    about: Option<ProposalId>,
    now: DateTime<Utc>,
) -> Result<Verified, PageError> {
    let authentication: PasskeyAuthentication = decode(ceremony)?;
    let result = match passkeys
        .webauthn()
        .finish_passkey_authentication(assertion, &authentication)
    {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            let payload = json!({
                "slack_user_id": user, "proposal_id": about,
                "credential_id": assertion.id, "why": "signature counter did not advance",
            });
            let actor = format!("slack:{user}");
            tx.append(about, EventKind::PasskeyRefused, &actor, payload, now)
                .await?;
            if let Some(proposal_id) = about {
                // A cloned or replayed credential is the security team's business at once.
                let fact = Announcement::PossiblyClonedPasskey {
                    by: user.clone(),
                    credential_id: assertion.id.clone(),
                };
                tx.enqueue(proposal_id, Job::Audit { fact }, now).await?;
            }
            return Err(PageError::PossiblyCloned);
        }
        Err(error) => return Err(PageError::NotVerified(error.to_string())),
    };
    if !result.user_verified() {
        return Err(PageError::NotVerified(
            "user verification was not performed".into(),
        ));
    }
    let id = credential_id(result.cred_id());
    let Some(stored) = owned.iter().find(|s| s.id == id) else {
        return Err(PageError::NotVerified("not one of your passkeys".into()));
    };
    let mut passkey: Passkey = decode(&stored.passkey)?;
    passkey.update_credential(&result);
    tx.update_passkey(&id, &encode(&passkey), now).await?;
    Ok(Verified {
        credential_id: id,
        user_verified: result.user_verified(),
    })
}

/// The registration options for `user`'s next passkey (their others excluded); the ceremony's
/// state is kept on the link.
pub(super) async fn start_registration(
    state: &AppState,
    passkeys: &Passkeys,
    token: &str,
    user: &str,
    now: DateTime<Utc>,
) -> Result<webauthn_rs::prelude::CreationChallengeResponse, PageError> {
    let existing = live_passkeys(&state.ledger.passkeys_of(user).await?)?;
    let exclude = existing.iter().map(|(_, p)| p.cred_id().clone()).collect();
    let (options, registration) = passkeys
        .webauthn()
        .start_passkey_registration(user_handle(user), user, user, Some(exclude))
        .map_err(|e| PageError::NotVerified(e.to_string()))?;
    keep_ceremony(state, token, &encode(&registration), now).await?;
    Ok(options)
}

/// The assertion options, limited to `user`'s passkeys; the ceremony's state is kept on the
/// link.
pub(super) async fn start_assertion(
    state: &AppState,
    passkeys: &Passkeys,
    token: &str,
    user: &str,
    now: DateTime<Utc>,
) -> Result<webauthn_rs::prelude::RequestChallengeResponse, PageError> {
    let owned = live_passkeys(&state.ledger.passkeys_of(user).await?)?;
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

/// Verifies a new credential against a taken registration ceremony and keeps it as `user`'s
/// passkey, with its `passkey.enrolled` event (`vouched_by`: the passkey that proved it was
/// them, when one did). On an error the caller commits `tx` all the same.
pub(super) async fn register(
    passkeys: &Passkeys,
    tx: &mut Tx,
    user: &str,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    vouched_by: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, PageError> {
    let registration: PasskeyRegistration = decode(ceremony)?;
    let passkey = passkeys
        .webauthn()
        .finish_passkey_registration(credential, &registration)
        .map_err(|e| PageError::NotVerified(e.to_string()))?;
    let id = credential_id(passkey.cred_id());
    let aaguid = aaguid(credential);
    tx.insert_passkey(&id, user, &encode(&passkey), aaguid.as_deref(), now)
        .await?;
    let payload = json!({
        "credential_id": id, "slack_user_id": user, "aaguid": aaguid, "vouched_by": vouched_by,
    });
    tx.append(
        None,
        EventKind::PasskeyEnrolled,
        &format!("slack:{user}"),
        payload,
        now,
    )
    .await?;
    tracing::info!(slack_user_id = %user, "passkey enrolled");
    Ok(id)
}
