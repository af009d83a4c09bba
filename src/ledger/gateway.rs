//! The Users API gateway's clients and the access tokens issued to them (DESIGN §10). A
//! client's secret is shown once at creation and an access token once at issue; only their
//! SHA-256 is stored, so any replica can check either.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{timestamp, EventKind, Ledger, Result};
use crate::domain::{Action, OnePasswordUserId, Proposal};

/// What a client may ask, named as 1Password names an OAuth application's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayPermission {
    ListUsers,
    GetUser,
    SuspendUsers,
    ReactivateUsers,
}

impl GatewayPermission {
    pub const ALL: [GatewayPermission; 4] = [
        GatewayPermission::ListUsers,
        GatewayPermission::GetUser,
        GatewayPermission::SuspendUsers,
        GatewayPermission::ReactivateUsers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayPermission::ListUsers => "list-users",
            GatewayPermission::GetUser => "get-user",
            GatewayPermission::SuspendUsers => "suspend-users",
            GatewayPermission::ReactivateUsers => "reactivate-users",
        }
    }

    /// The permission an action through the gateway needs.
    pub fn to(action: Action) -> Self {
        match action {
            Action::Suspend => GatewayPermission::SuspendUsers,
            Action::Restore => GatewayPermission::ReactivateUsers,
        }
    }

    pub fn parse(raw: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown permission {raw:?}; permissions are {}",
                    known.join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayClient {
    pub id: String,
    pub name: String,
    pub permissions: Vec<GatewayPermission>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl GatewayClient {
    pub fn may(&self, permission: GatewayPermission) -> bool {
        self.permissions.contains(&permission)
    }

    fn from_row(row: &sqlx::any::AnyRow) -> Self {
        let permissions: String = row.get("permissions");
        Self {
            id: row.get("id"),
            name: row.get("name"),
            // Stored permissions were validated when the client was made.
            permissions: permissions
                .split(' ')
                .filter_map(|p| GatewayPermission::parse(p).ok())
                .collect(),
            created_at: row.get("created_at"),
            revoked_at: row.get("revoked_at"),
        }
    }
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NewClientError {
    #[error("a live gateway client or API token is already named {0:?}: policy rules name integrations by name, so names must be unique")]
    NameTaken(String),
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

const CLIENT_COLUMNS: &str = "id, name, permissions, created_at, revoked_at";

impl Ledger {
    /// Makes a client and returns it with its secret, which is not kept anywhere.
    pub async fn create_gateway_client(
        &self,
        name: &str,
        permissions: &[GatewayPermission],
        now: DateTime<Utc>,
    ) -> std::result::Result<(GatewayClient, String), NewClientError> {
        let secret = format!("csgw_{}", random_hex());
        let id = format!("gw_{}", &sha256_hex(&secret)[..20]);
        let names: Vec<_> = permissions.iter().map(|p| p.as_str()).collect();
        let mut tx = self.begin().await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM gateway_clients WHERE name = $1 AND revoked_at IS NULL)
                  + (SELECT COUNT(*) FROM api_tokens WHERE name = $1 AND revoked_at IS NULL)",
        )
        .bind(name)
        .fetch_one(tx.read_conn().await?)
        .await?;
        if taken > 0 {
            return Err(NewClientError::NameTaken(name.to_owned()));
        }
        sqlx::query("INSERT INTO gateway_clients (id, name, secret_hash, permissions, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(name)
            .bind(sha256_hex(&secret))
            .bind(names.join(" "))
            .bind(timestamp(now))
            .execute(tx.conn().await?)
            .await?;
        let payload = json!({"client_id": id, "name": name, "permissions": names});
        tx.append(None, EventKind::GatewayClientCreated, "cli", payload, now)
            .await?;
        tx.commit().await?;
        let client = GatewayClient {
            id,
            name: name.to_owned(),
            permissions: permissions.to_vec(),
            created_at: timestamp(now),
            revoked_at: None,
        };
        Ok((client, secret))
    }

    pub async fn gateway_clients(&self) -> Result<Vec<GatewayClient>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM gateway_clients ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        Ok(rows.iter().map(GatewayClient::from_row).collect())
    }

    /// Revokes the client with this id and every token it holds; `None` when there is no
    /// such live client.
    pub async fn revoke_gateway_client(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<GatewayClient>> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE gateway_clients SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
             RETURNING {CLIENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(timestamp(now))
            .bind(id)
            .fetch_optional(tx.conn().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let client = GatewayClient::from_row(&row);
        sqlx::query("DELETE FROM gateway_tokens WHERE client_id = $1")
            .bind(id)
            .execute(tx.conn().await?)
            .await?;
        let payload = json!({"client_id": client.id, "name": client.name});
        tx.append(None, EventKind::GatewayClientRevoked, "cli", payload, now)
            .await?;
        tx.commit().await?;
        Ok(Some(client))
    }

    /// The live client these credentials (HTTP Basic, as 1Password's token endpoint takes
    /// them) belong to.
    pub async fn gateway_client_by_secret(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<Option<GatewayClient>> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM gateway_clients
             WHERE id = $1 AND secret_hash = $2 AND revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(sha256_hex(secret))
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(GatewayClient::from_row))
    }

    /// Issues an access token to `client` for `lifetime`; the token is returned once and kept
    /// hashed. Expired tokens are swept out in the same transaction.
    pub async fn issue_gateway_token(
        &self,
        client: &GatewayClient,
        lifetime: Duration,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let token = format!("csgwt_{}", random_hex());
        let expires_at = now + lifetime;
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM gateway_tokens WHERE expires_at < $1")
            .bind(timestamp(now))
            .execute(tx.conn().await?)
            .await?;
        sqlx::query(
            "INSERT INTO gateway_tokens (token_hash, client_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(sha256_hex(&token))
        .bind(&client.id)
        .bind(timestamp(expires_at))
        .execute(tx.conn().await?)
        .await?;
        let payload = json!({"client_id": client.id, "name": client.name, "expires_at": timestamp(expires_at)});
        let actor = format!("integration:{}", client.name);
        tx.append(None, EventKind::GatewayTokenIssued, &actor, payload, now)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Revokes `token` if `client` holds it; whether it did.
    pub async fn revoke_gateway_token(
        &self,
        client: &GatewayClient,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("DELETE FROM gateway_tokens WHERE token_hash = $1 AND client_id = $2")
                .bind(sha256_hex(token))
                .bind(&client.id)
                .execute(tx.conn().await?)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let payload = json!({"client_id": client.id, "name": client.name});
        let actor = format!("integration:{}", client.name);
        tx.append(None, EventKind::GatewayTokenRevoked, &actor, payload, now)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The live client holding this unexpired access token.
    pub async fn gateway_client_by_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<GatewayClient>> {
        let row = sqlx::query(
            "SELECT c.id, c.name, c.permissions, c.created_at, c.revoked_at
             FROM gateway_tokens t JOIN gateway_clients c ON c.id = t.client_id
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND c.revoked_at IS NULL",
        )
        .bind(sha256_hex(token))
        .bind(timestamp(now))
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(GatewayClient::from_row))
    }

    /// The newest proposal about this user, with when it last changed: what a repeated
    /// gateway call finds its earlier call's proposal by (and sees whether a later decision
    /// about the user overtook it).
    pub async fn latest_proposal_about(
        &self,
        user: &OnePasswordUserId,
    ) -> Result<Option<(Proposal, DateTime<Utc>)>> {
        let row = sqlx::query(
            "SELECT document, updated_at FROM proposals WHERE target_user_id = $1
             ORDER BY id DESC LIMIT 1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let proposal = super::proposals::decode(row.get("document"))?;
        let updated: String = row.get("updated_at");
        let updated = DateTime::parse_from_rfc3339(&updated)
            .map(|t| t.to_utc())
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Some((proposal, updated)))
    }
}
