//! Enrollment is rooted outside Slack: an operator at the host makes a one-time link for a
//! Slack user (`countersign passkey invite`), and its page registers their passkey. An
//! approver who has one may add another from Slack (`/approvals passkey`), but only after an
//! assertion with a passkey they already have: a Slack session alone never enrolls one.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use super::ceremonies::{
    live_link, passkeys, register, start_assertion, start_registration, take_ceremony,
    verify_assertion, PageError,
};
use super::relying_party::Passkeys;
use super::state::AppState;
use super::step_up::Offer;
use crate::domain::SlackUserId;
use crate::ledger::{EventKind, Ledger, LinkPurpose, PasskeyLink};

/// How long an enrollment link lives.
pub const ENROLL_LINK_FOR: Duration = Duration::minutes(15);

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
    start_registration(state, passkeys, token, &link.slack_user_id, now).await
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
    let registered = register(
        passkeys,
        &mut tx,
        &link.slack_user_id,
        &ceremony,
        credential,
        None,
        now,
    )
    .await;
    if registered.is_ok() {
        tx.use_passkey_link(token, now).await?;
    }
    // The challenge is spent either way.
    tx.commit().await?;
    registered
}

/// `/approvals passkey`: a one-time link to add another passkey, for an approver who has one.
pub async fn offer_add(state: &AppState, user: &SlackUserId) -> Result<Offer, PageError> {
    let passkeys = passkeys(state)?;
    if state.ledger.passkeys_of(user.as_str()).await?.is_empty() {
        return Ok(Offer::NoPasskey);
    }
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let token = tx
        .create_passkey_link(
            LinkPurpose::Add,
            user.as_str(),
            None,
            now,
            now + ENROLL_LINK_FOR,
        )
        .await?;
    tx.commit().await?;
    Ok(Offer::Link(passkeys.link(LinkPurpose::Add, &token)))
}

/// Who an add link is for, for its page.
pub async fn adding(state: &AppState, token: &str) -> Result<PasskeyLink, PageError> {
    passkeys(state)?;
    live_link(&state.ledger, token, LinkPurpose::Add, Utc::now()).await
}

/// First the approver proves a passkey they have: the assertion options.
pub async fn add_options(
    state: &AppState,
    token: &str,
) -> Result<RequestChallengeResponse, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let link = live_link(&state.ledger, token, LinkPurpose::Add, now).await?;
    start_assertion(state, passkeys, token, &link.slack_user_id, now).await
}

/// The assertion with an existing passkey; once it verifies, the registration options for the
/// new one (that ceremony is kept on the link in its place).
pub async fn add_prove(
    state: &AppState,
    token: &str,
    assertion: &PublicKeyCredential,
) -> Result<CreationChallengeResponse, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let link = live_link(&state.ledger, token, LinkPurpose::Add, now).await?;
    let user = SlackUserId::parse(&link.slack_user_id).map_err(|_| PageError::Unknown)?;
    let owned = state.ledger.passkeys_of(user.as_str()).await?;
    let mut tx = state.ledger.begin().await?;
    let (_, ceremony) = take_ceremony(state, &mut tx, token, LinkPurpose::Add, now).await?;
    let verified = verify_assertion(
        passkeys, &mut tx, &user, &owned, &ceremony, assertion, None, now,
    )
    .await;
    let vouched = verified.map(|v| v.credential_id);
    if let Ok(by) = &vouched {
        tx.prove_passkey_link(token, by).await?;
    }
    tx.commit().await?;
    vouched?;
    start_registration(state, passkeys, token, user.as_str(), now).await
}

/// The new credential, accepted only after the link's owner proved an existing passkey.
pub async fn add_finish(
    state: &AppState,
    token: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<String, PageError> {
    let passkeys = passkeys(state)?;
    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let (link, ceremony) = take_ceremony(state, &mut tx, token, LinkPurpose::Add, now).await?;
    let Some(vouched_by) = link.proven_by.clone() else {
        // Asked to register without the assertion first: nothing is kept.
        tx.commit().await?;
        return Err(PageError::Refused(
            "Prove a passkey you already have first; nothing was registered.".into(),
        ));
    };
    let registered = register(
        passkeys,
        &mut tx,
        &link.slack_user_id,
        &ceremony,
        credential,
        Some(&vouched_by),
        now,
    )
    .await;
    if registered.is_ok() {
        tx.use_passkey_link(token, now).await?;
    }
    tx.commit().await?;
    registered
}
