//! Passkeys and their one-time links. A link's token is a secret shown once (in the URL); only
//! its SHA-256 is stored. A ceremony's server state is kept on its link between the page asking
//! for options and the page sending the authenticator's answer, and taken off once, so a
//! challenge is used once whichever replica serves either half.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{timestamp, Ledger, Result, Tx};
use crate::domain::{Action, ProposalId};

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Register a passkey for the Slack user it names (from `passkey invite`).
    Enroll,
    /// Register another passkey for a Slack user, after an assertion with one they have.
    Add,
    /// Cast that Slack user's approving vote on one proposal with their passkey.
    Vote,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Enroll => "enroll",
            LinkPurpose::Add => "add",
            LinkPurpose::Vote => "vote",
        }
    }
}

/// A one-time link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyLink {
    pub purpose: LinkPurpose,
    pub slack_user_id: String,
    /// The proposal and action a vote link is bound to.
    pub vote_on: Option<(ProposalId, Action)>,
    pub expires_at: DateTime<Utc>,
    pub attempts: i64,
    pub used: bool,
    /// For an add link: the passkey its owner proved (credential id), once they did.
    pub proven_by: Option<String>,
}

/// A registered passkey: `passkey` is the credential as the WebAuthn library keeps it (JSON:
/// public key, signature counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: String,
    pub slack_user_id: String,
    pub passkey: String,
    pub aaguid: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.to_utc())
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

const LINK_COLUMNS: &str =
    "purpose, slack_user_id, proposal_id, action, expires_at, attempts, used_at, proven_by";

fn link_from(row: &sqlx::any::AnyRow) -> Result<PasskeyLink> {
    let purpose = match row.get::<String, _>("purpose").as_str() {
        "enroll" => LinkPurpose::Enroll,
        "add" => LinkPurpose::Add,
        _ => LinkPurpose::Vote,
    };
    let proposal: Option<String> = row.get("proposal_id");
    let action: Option<String> = row.get("action");
    let vote_on = match (proposal, action) {
        (Some(id), Some(action)) => Some((
            ProposalId::parse(&id).map_err(|e| sqlx::Error::Decode(e.into()))?,
            Action::parse(&action).map_err(|e| sqlx::Error::Decode(e.into()))?,
        )),
        _ => None,
    };
    Ok(PasskeyLink {
        purpose,
        slack_user_id: row.get("slack_user_id"),
        vote_on,
        expires_at: parse_time(&row.get::<String, _>("expires_at"))?,
        attempts: row.get("attempts"),
        used: row.get::<Option<String>, _>("used_at").is_some(),
        proven_by: row.get("proven_by"),
    })
}

fn passkey_from(row: &sqlx::any::AnyRow) -> StoredPasskey {
    StoredPasskey {
        id: row.get("id"),
        slack_user_id: row.get("slack_user_id"),
        passkey: row.get("passkey"),
        aaguid: row.get("aaguid"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    }
}

const PASSKEY_COLUMNS: &str = "id, slack_user_id, passkey, aaguid, created_at, revoked_at";

impl Ledger {
    /// The link whose token this is, whatever its state.
    pub async fn passkey_link(&self, token: &str) -> Result<Option<PasskeyLink>> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM passkey_links WHERE token_sha256 = $1"
        ))
        .bind(hash_token(token))
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(link_from).transpose()
    }

    /// A Slack user's live passkeys.
    pub async fn passkeys_of(&self, slack_user_id: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys
             WHERE slack_user_id = $1 AND revoked_at IS NULL ORDER BY created_at"
        ))
        .bind(slack_user_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(passkey_from).collect())
    }

    /// Every passkey ever registered, revoked ones included.
    pub async fn passkeys(&self) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys ORDER BY created_at"
        ))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(passkey_from).collect())
    }
}

impl Tx {
    /// Makes a one-time link and returns its token, which is kept nowhere.
    pub async fn create_passkey_link(
        &mut self,
        purpose: LinkPurpose,
        slack_user_id: &str,
        vote_on: Option<(ProposalId, Action)>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        sqlx::query(
            "INSERT INTO passkey_links (token_sha256, purpose, slack_user_id, proposal_id, action,
                 created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(hash_token(&token))
        .bind(purpose.as_str())
        .bind(slack_user_id)
        .bind(vote_on.map(|(id, _)| id.to_string()))
        .bind(vote_on.map(|(_, action)| action.as_str()))
        .bind(timestamp(now))
        .bind(timestamp(expires_at))
        .execute(self.conn().await?)
        .await?;
        Ok(token)
    }

    /// Starts a ceremony on a live link: counts the attempt and keeps the ceremony's state
    /// (replacing one started before). `None` when the link is unknown, used, expired or out of
    /// attempts; nothing changes then.
    pub async fn start_ceremony(
        &mut self,
        token: &str,
        state: &str,
        now: DateTime<Utc>,
        max_attempts: i64,
    ) -> Result<Option<PasskeyLink>> {
        let row = sqlx::query(&format!(
            "UPDATE passkey_links SET attempts = attempts + 1, ceremony = $1
             WHERE token_sha256 = $2 AND used_at IS NULL AND expires_at > $3 AND attempts < $4
             RETURNING {LINK_COLUMNS}"
        ))
        .bind(state)
        .bind(hash_token(token))
        .bind(timestamp(now))
        .bind(max_attempts)
        .fetch_optional(self.conn().await?)
        .await?;
        row.as_ref().map(link_from).transpose()
    }

    /// Takes the started ceremony's state off a live link, once: a second answer to the same
    /// challenge finds none. Read and cleared under the ledger's write lock.
    pub async fn take_ceremony(
        &mut self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(PasskeyLink, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS}, ceremony FROM passkey_links
             WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2
                 AND ceremony IS NOT NULL"
        ))
        .bind(hash_token(token))
        .bind(timestamp(now))
        .fetch_optional(self.read_conn().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("UPDATE passkey_links SET ceremony = NULL WHERE token_sha256 = $1")
            .bind(hash_token(token))
            .execute(self.conn().await?)
            .await?;
        Ok(Some((link_from(&row)?, row.get("ceremony"))))
    }

    /// Records that an add link's owner proved the passkey `credential_id` is theirs.
    pub async fn prove_passkey_link(&mut self, token: &str, credential_id: &str) -> Result<()> {
        sqlx::query("UPDATE passkey_links SET proven_by = $1 WHERE token_sha256 = $2")
            .bind(credential_id)
            .bind(hash_token(token))
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Marks a link used: it opens nothing any more.
    pub async fn use_passkey_link(&mut self, token: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE passkey_links SET used_at = $1 WHERE token_sha256 = $2")
            .bind(timestamp(now))
            .bind(hash_token(token))
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    pub async fn insert_passkey(
        &mut self,
        id: &str,
        slack_user_id: &str,
        passkey: &str,
        aaguid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO passkeys (id, slack_user_id, passkey, aaguid, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(slack_user_id)
        .bind(passkey)
        .bind(aaguid)
        .bind(timestamp(now))
        .execute(self.conn().await?)
        .await?;
        Ok(())
    }

    /// Keeps a passkey's new state (its signature counter) after a verified assertion.
    pub async fn update_passkey(
        &mut self,
        id: &str,
        passkey: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("UPDATE passkeys SET passkey = $1, used_at = $2 WHERE id = $3")
            .bind(passkey)
            .bind(timestamp(now))
            .bind(id)
            .execute(self.conn().await?)
            .await?;
        Ok(())
    }

    /// Revokes a live passkey; `None` when there is no such live passkey.
    pub async fn revoke_passkey(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(&format!(
            "UPDATE passkeys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
             RETURNING {PASSKEY_COLUMNS}"
        ))
        .bind(timestamp(now))
        .bind(id)
        .fetch_optional(self.conn().await?)
        .await?;
        Ok(row.as_ref().map(passkey_from))
    }
}
