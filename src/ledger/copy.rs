//! Moving a ledger to another database (SQLite to PostgreSQL, typically): every event with
//! its seq and hash, and the current state tables, copied into an empty ledger in one
//! transaction, then verified there. The hashes are not recomputed but carried: the copy is
//! the same chain, and `ledger verify` on it must end at the source's head.

use futures_util::TryStreamExt;
use sqlx::Row;

use super::chain::ChainBreak;
use super::engine::values_list;
use super::{Engine, Ledger, Tx};

/// A column's type, as both engines' schemas declare it.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
}

use Kind::{Int, Text};

/// A table to copy: its columns, and the order its rows are read in.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
}

/// The tables a ledger consists of, parents before children, each with its columns and the
/// order rows are read in. `leases` is left out: a lease names a process of the old
/// deployment, which is not running on the new one.
const TABLES: &[Table] = &[
    Table {
        name: "incidents",
        columns: &[
            ("id", Text),
            ("channel", Text),
            ("alert_id", Text),
            ("created_at", Text),
            ("joined_at", Text),
            ("members", Int),
            ("cards", Int),
        ],
        order: "id",
    },
    Table {
        name: "proposals",
        columns: &[
            ("id", Text),
            ("action", Text),
            ("status", Text),
            ("target_user_id", Text),
            ("requester_token_id", Text),
            ("created_at", Text),
            ("expires_at", Text),
            ("approved_at", Text),
            ("slack_channel", Text),
            ("slack_ts", Text),
            ("document", Text),
            ("updated_at", Text),
            ("reminded_at", Text),
            ("escalated_at", Text),
            ("incident_id", Text),
            ("incident_card", Int),
            ("incident_seq", Int),
        ],
        order: "id",
    },
    Table {
        name: "approvals",
        columns: &[
            ("proposal_id", Text),
            ("slack_user_id", Text),
            ("name", Text),
            ("email", Text),
            ("at", Text),
        ],
        order: "proposal_id, slack_user_id",
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("token_hash", Text),
            ("scopes", Text),
            ("created_at", Text),
            ("revoked_at", Text),
        ],
        order: "id",
    },
    Table {
        name: "idempotency_keys",
        columns: &[
            ("token_id", Text),
            ("key", Text),
            ("body_sha256", Text),
            ("proposal_id", Text),
            ("created_at", Text),
        ],
        order: "token_id, key",
    },
    Table {
        name: "ledger_events",
        columns: &[
            ("seq", Int),
            ("proposal_id", Text),
            ("at", Text),
            ("kind", Text),
            ("actor", Text),
            ("payload", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
        order: "seq",
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("proposal_id", Text),
            ("lane", Text),
            ("kind", Text),
            ("payload", Text),
            ("created_at", Text),
            ("run_after", Text),
            ("attempts", Int),
            ("leased_until", Text),
            ("last_error", Text),
            ("done_at", Text),
            ("lease_token", Text),
            ("priority", Int),
        ],
        order: "id",
    },
    Table {
        name: "user_states",
        columns: &[
            ("user_id", Text),
            ("email", Text),
            ("state", Text),
            ("seen_at", Text),
            ("proposal_id", Text),
            ("audit_event", Text),
        ],
        order: "user_id",
    },
    Table {
        name: "drifts",
        columns: &[
            ("seq", Int),
            ("user_id", Text),
            ("email", Text),
            ("from_state", Text),
            ("to_state", Text),
            ("urgent", Int),
            ("noticed_at", Text),
            ("announced_at", Text),
            ("actor_uuid", Text),
            ("actor_name", Text),
            ("actor_email", Text),
            ("actor_ip", Text),
            ("actor_location", Text),
            ("changed_at", Text),
            ("attributed_at", Text),
            ("message_channel", Text),
            ("message_ts", Text),
            ("edited_at", Text),
        ],
        order: "seq",
    },
    Table {
        name: "audit_events",
        columns: &[
            ("uuid", Text),
            ("user_id", Text),
            ("action", Text),
            ("occurred_at", Text),
            ("proposal_id", Text),
            ("drift_seq", Int),
            ("read_at", Text),
        ],
        order: "uuid",
    },
    Table {
        name: "audit_cursor",
        columns: &[("name", Text), ("cursor", Text), ("updated_at", Text)],
        order: "name",
    },
    Table {
        name: "passkeys",
        columns: &[
            ("id", Text),
            ("slack_user_id", Text),
            ("passkey", Text),
            ("aaguid", Text),
            ("created_at", Text),
            ("used_at", Text),
            ("revoked_at", Text),
        ],
        order: "id",
    },
    Table {
        name: "passkey_links",
        columns: &[
            ("token_sha256", Text),
            ("purpose", Text),
            ("slack_user_id", Text),
            ("proposal_id", Text),
            ("action", Text),
            ("created_at", Text),
            ("expires_at", Text),
            ("attempts", Int),
            ("ceremony", Text),
            ("proven_by", Text),
            ("used_at", Text),
        ],
        order: "token_sha256",
    },
    Table {
        name: "gateway_clients",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("secret_hash", Text),
            ("permissions", Text),
            ("created_at", Text),
            ("revoked_at", Text),
        ],
        order: "id",
    },
    // After its clients: each token names one.
    Table {
        name: "gateway_tokens",
        columns: &[
            ("token_hash", Text),
            ("client_id", Text),
            ("expires_at", Text),
        ],
        order: "token_hash",
    },
];

/// Rows inserted per statement: well under both engines' limit on parameters.
const CHUNK: usize = 200;

/// What a copy carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Rows per table, in copy order.
    pub rows: Vec<(&'static str, u64)>,
    pub events: u64,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target ledger is not empty ({table} has rows): copy only into a new database")]
    TargetNotEmpty { table: &'static str },
    #[error("the source ledger does not verify (seq {}: {}); nothing was copied", .0.seq, .0.why)]
    SourceBroken(ChainBreak),
    #[error("the copy does not verify (seq {}: {})", .0.seq, .0.why)]
    CopyBroken(ChainBreak),
    #[error("the source changed while it was copied (it now ends at seq {found_seq}, it was verified to seq {seq}); stop countersign on it and copy again")]
    SourceChanged { seq: i64, found_seq: i64 },
    #[error(
        "the copy ends at seq {found_seq} hash {found_hash}, the source at seq {seq} hash {hash}"
    )]
    HeadsDiffer {
        seq: i64,
        hash: String,
        found_seq: i64,
        found_hash: String,
    },
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Copies the ledger at `from` into the new, empty ledger at `to` (migrated first), and
/// verifies the copy ends at the source's head. Stop countersign on the source first: the
/// copy reads it as it is.
pub async fn copy(from: &str, to: &str) -> Result<Copied, CopyError> {
    let source = Ledger::open_read_only(from).await?;
    let head = source.verify(&[]).await?.map_err(CopyError::SourceBroken)?;
    let target = Ledger::connect(to).await?;
    target.migrate().await?;

    let mut tx = target.begin().await?;
    for Table { name: table, .. } in TABLES {
        let rows: Option<i64> = sqlx::query_scalar(&format!("SELECT 1 FROM {table} LIMIT 1"))
            .fetch_optional(tx.read_conn().await?)
            .await?;
        if rows.is_some() {
            return Err(CopyError::TargetNotEmpty { table });
        }
    }
    // One snapshot of the source for every table, so rows copied from one table agree with
    // those of the next even if something writes to the source meanwhile.
    let mut snapshot = source.reader.begin().await?;
    if source.engine() == Engine::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .execute(&mut *snapshot)
            .await?;
    }
    let mut copied = Vec::new();
    for table in TABLES {
        copied.push((table.name, copy_table(&mut snapshot, &mut tx, table).await?));
    }
    snapshot.rollback().await?;
    // The copy must end where the verified source did, or nothing is committed.
    let (seq, _) = tx.head().await?;
    if seq != head.seq {
        return Err(CopyError::SourceChanged {
            seq: head.seq,
            found_seq: seq,
        });
    }
    if target.engine() == Engine::Postgres {
        // Rows came with their ids; the identity must continue after them.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('outbox', 'id'), COALESCE(MAX(id), 0) + 1, false)
             FROM outbox",
        )
        .execute(tx.conn().await?)
        .await?;
    }
    tx.commit().await?;
    source.close().await;

    let found = target.verify(&[]).await?.map_err(CopyError::CopyBroken)?;
    target.close().await;
    if (found.seq, &found.hash) != (head.seq, &head.hash) {
        return Err(CopyError::HeadsDiffer {
            seq: head.seq,
            hash: head.hash,
            found_seq: found.seq,
            found_hash: found.hash,
        });
    }
    Ok(Copied {
        rows: copied,
        events: found.events,
        head_seq: found.seq,
        head_hash: found.hash,
    })
}

/// One column's value of one row, as read.
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

async fn copy_table(
    source: &mut sqlx::AnyConnection,
    tx: &mut Tx,
    table: &Table,
) -> Result<u64, sqlx::Error> {
    let Table {
        name: table,
        columns,
        order,
    } = table;
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let select = format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", "));
    let mut rows = sqlx::query(&select).fetch(source);
    let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(CHUNK);
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        let mut values = Vec::with_capacity(columns.len());
        for (i, (_, kind)) in columns.iter().enumerate() {
            values.push(match kind {
                Text => Value::Text(row.try_get(i)?),
                Int => Value::Int(row.try_get(i)?),
            });
        }
        chunk.push(values);
        if chunk.len() == CHUNK {
            count += insert(tx, table, &names, &mut chunk).await?;
        }
    }
    count += insert(tx, table, &names, &mut chunk).await?;
    Ok(count)
}

async fn insert(
    tx: &mut Tx,
    table: &str,
    names: &[&str],
    chunk: &mut Vec<Vec<Value>>,
) -> Result<u64, sqlx::Error> {
    if chunk.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        names.join(", "),
        values_list(chunk.len(), names.len())
    );
    let mut insert = sqlx::query(&sql);
    for value in chunk.drain(..).flatten() {
        insert = match value {
            Value::Text(text) => insert.bind(text),
            Value::Int(int) => insert.bind(int),
        };
    }
    Ok(insert.execute(tx.conn().await?).await?.rows_affected())
}
