//! The approvals ledger in SQLite: current proposal state, the append-only hash-chained event
//! log, API tokens and the outbox. Every write goes through [`Tx`], one `BEGIN IMMEDIATE`
//! transaction on the single writer connection, so the chain head is read and extended
//! atomically and a transition's event, state and follow-up jobs commit together or not at all.

pub mod chain;
mod drift;
mod events;
mod export;
mod group;
mod idempotency;
mod outbox;
mod proposals;
mod tokens;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::domain::ProposalId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use drift::{last_proposal_of, UnannouncedDrift};
pub use events::{EventKind, EventQuery};
pub use export::{export, ExportFormat};
pub use group::GroupStats;
pub use idempotency::Remembered;
pub use outbox::{ClaimedJob, Job, Lane};
pub use proposals::ProposalQuery;
pub use tokens::{ApiToken, Scope};

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// The ledger's one spelling of a time: RFC 3339 UTC with microseconds and `Z`, which also
/// sorts correctly as text.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[derive(Clone)]
pub struct Ledger {
    writer: Arc<group::Writer>,
    reader: SqlitePool,
    /// The last answer to "does the database take a write?", so readiness probes do not
    /// queue behind the single writer on every call.
    writable: Arc<tokio::sync::Mutex<Option<WriteCheck>>>,
}

/// When writability was last asked, and the answer.
type WriteCheck = (Instant, std::result::Result<(), String>);

/// How long a readiness answer about writes is reused.
const WRITABLE_FOR: Duration = Duration::from_secs(5);

impl Ledger {
    pub async fn connect(database_url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = group::Writer::new(
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?,
        );
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options.read_only(true));
        Ok(Self {
            writer,
            reader,
            writable: Arc::default(),
        })
    }

    /// Opens an existing ledger for reading only (verify, export): a mistyped path fails
    /// instead of creating an empty database that "verifies", and the audited file is not
    /// written to.
    pub async fn open_read_only(database_url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let reader = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer: group::Writer::new(reader.clone()),
            reader,
            writable: Arc::default(),
        })
    }

    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("./migrations").run(self.writer.pool()).await
    }

    /// Starts a write transaction: a savepoint in the writer's current group, which
    /// `BEGIN IMMEDIATE` opened (taking the write lock up front, so two processes on one
    /// database serialize instead of failing on a lock upgrade).
    pub async fn begin(&self) -> Result<Tx> {
        let (held, head) = self.writer.begin().await?;
        Ok(Tx {
            inner: Some(held),
            jobs: Vec::new(),
            head,
        })
    }

    /// Whether the database answers a write; used by readiness.
    pub async fn ping(&self) -> Result<()> {
        let tx = self.begin().await?;
        drop(tx);
        Ok(())
    }

    /// Whether the database takes writes, asked of it at most every few seconds: probes
    /// arriving meanwhile (or while one is asking) share the answer instead of each taking
    /// the write lock.
    pub async fn writable(&self) -> std::result::Result<(), String> {
        let mut cached = self.writable.lock().await;
        if let Some((at, answer)) = cached.as_ref() {
            if at.elapsed() < WRITABLE_FOR {
                return answer.clone();
            }
        }
        let answer = self.ping().await.map_err(|e| e.to_string());
        *cached = Some((Instant::now(), answer.clone()));
        answer
    }

    /// How many commits the writer issued and how many transactions they carried.
    pub fn group_stats(&self) -> GroupStats {
        self.writer.stats()
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.writer.pool().close().await;
        self.reader.close().await;
    }
}

/// One write transaction: a member of the writer's group commit. Dropping it without
/// [`Tx::commit`] rolls back its own changes, and only its own.
pub struct Tx {
    inner: Option<group::Held>,
    /// Jobs filed by this transaction, inserted together at commit.
    jobs: Vec<(ProposalId, Job, DateTime<Utc>)>,
    /// The chain head once this transaction has read or extended it: the write lock is held,
    /// so nobody else can move it until commit.
    head: Option<(i64, String)>,
}

impl Tx {
    /// Makes the transaction durable: returns once the group it joined has committed.
    pub async fn commit(mut self) -> Result<()> {
        self.insert_jobs().await?;
        let held = self
            .inner
            .take()
            .expect("an open transaction holds the writer");
        held.commit(self.head.take()).await
    }

    /// The write connection, for statements.
    fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        self.inner
            .as_mut()
            .expect("an open transaction holds the writer")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(held) = self.inner.as_mut() {
            group::abandon(held);
        }
    }
}
