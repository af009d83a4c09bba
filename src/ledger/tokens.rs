//! API tokens. The secret is shown once at creation; only its SHA-256 is stored.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{timestamp, EventKind, Ledger, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    ProposeSuspend,
    ProposeRestore,
    Read,
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::ProposeSuspend,
        Scope::ProposeRestore,
        Scope::Read,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProposeSuspend => "propose:suspend",
            Scope::ProposeRestore => "propose:restore",
            Scope::Read => "read",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope {raw:?}; scopes are {}", known.join(", "))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiToken {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Self {
        let scopes: String = row.get("scopes");
        Self {
            id: row.get("id"),
            name: row.get("name"),
            // Stored scopes were validated when the token was made.
            scopes: scopes
                .split(' ')
                .filter_map(|s| Scope::parse(s).ok())
                .collect(),
            created_at: row.get("created_at"),
            revoked_at: row.get("revoked_at"),
        }
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Ledger {
    /// Makes a token and returns it with its secret, which is not kept anywhere.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &[Scope],
        now: DateTime<Utc>,
    ) -> Result<(ApiToken, String)> {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = format!("cs_{}", hex::encode(bytes));
        let id = format!("tok_{}", &hex::encode(Sha256::digest(bytes))[..16]);
        let scope_names: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_tokens (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(hash_secret(&secret))
            .bind(scope_names.join(" "))
            .bind(timestamp(now))
            .execute(tx.conn().await?)
            .await?;
        let payload = json!({"token_id": id, "name": name, "scopes": scope_names});
        tx.append(None, EventKind::TokenCreated, "cli", payload, now)
            .await?;
        tx.commit().await?;
        let token = ApiToken {
            id,
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            created_at: timestamp(now),
            revoked_at: None,
        };
        Ok((token, secret))
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM api_tokens ORDER BY created_at",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(ApiToken::from_row).collect())
    }

    /// Revokes the token with this id; `None` when there is no such live token.
    pub async fn revoke_token(&self, id: &str, now: DateTime<Utc>) -> Result<Option<ApiToken>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
             RETURNING id, name, scopes, created_at, revoked_at",
        )
        .bind(timestamp(now))
        .bind(id)
        .fetch_optional(tx.conn().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = ApiToken::from_row(&row);
        let payload = json!({"token_id": token.id, "name": token.name});
        tx.append(None, EventKind::TokenRevoked, "cli", payload, now)
            .await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// The live token whose secret this is.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(
            "SELECT id, name, scopes, created_at, revoked_at FROM api_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash_secret(secret))
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(ApiToken::from_row))
    }
}
