//! The approvals ledger: current proposal state, the append-only hash-chained event log, API
//! tokens and the outbox, on SQLite (the default, one file) or PostgreSQL (several replicas,
//! one ledger). Every write goes through [`Tx`], which holds the ledger's write lock — SQLite's
//! single writer, or PostgreSQL's advisory lock — so the chain head is read and extended
//! atomically and a transition's event, state and follow-up jobs commit together or not at
//! all. Which engine runs is settled here and in [`engine`]; callers never see it.

mod audit_events;
mod batch;
mod bells;
pub mod chain;
mod copy;
mod drift;
pub mod engine;
mod events;
mod export;
mod gateway;
mod group;
mod homes;
mod idempotency;
mod incidents;
mod outbox;
mod passkeys;
mod postgres;
mod proposals;
mod signatures;
mod sqlite;
mod statistics;
mod tokens;
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{Any, AnyConnection, AnyPool};

use crate::domain::ProposalId;
use bells::Bells;

pub use audit_events::TakenAs;
pub use copy::{copy, Copied, CopyError};
pub use drift::{last_proposal_of, UnannouncedDrift};
pub use engine::Engine;
pub use events::{EventKind, EventQuery};
pub use export::{export, ExportFormat};
pub use gateway::{GatewayClient, GatewayPermission, NewClientError};
pub use group::GroupStats;
pub use idempotency::Remembered;
pub use incidents::{IncidentSummary, OpenIncident};
pub use outbox::{ClaimedJob, Job, Lane};
pub use passkeys::{LinkPurpose, PasskeyLink, StoredPasskey};
pub use proposals::ProposalQuery;
pub use tokens::{ApiToken, Scope};

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// The ledger's one spelling of a time: RFC 3339 UTC with microseconds and `Z`, which also
/// sorts correctly as text.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Free text from elsewhere (an error a vendor answered, a Slack display name) as a column can
/// hold it: PostgreSQL's TEXT refuses NUL, which SQLite would keep. JSON columns need no such
/// care (serde writes NUL as `\u0000`).
fn storable(text: &str) -> String {
    text.replace('\0', "\u{fffd}")
}

/// The connections a PostgreSQL replica keeps: one for transactions that take the ledger's
/// lock (they run one at a time across replicas; this replica's queue for it and share its
/// commits, [`group`]), and a pool for everything else — reads, claims, lease renewals — which
/// must never wait behind a queue of writers, or a renewal could miss its lease.
const POSTGRES_OTHER_CONNECTIONS: u32 = 10;

#[derive(Clone)]
pub struct Ledger {
    engine: Engine,
    /// Where the ledger is, for the native connections `verify` reads on and the one that
    /// listens for other replicas' commits.
    url: Arc<str>,
    /// The write connection and its group commit.
    writer: Arc<group::Writer>,
    /// Rung for the lanes a commit filed jobs for.
    bells: Arc<Bells>,
    /// Kept fresh for the claim's plan after a burst of jobs (PostgreSQL).
    statistics: Arc<statistics::Statistics>,
    reader: AnyPool,
    /// The last answer to "does the database take a write?", so readiness probes do not
    /// queue behind the single writer on every call.
    writable: Arc<tokio::sync::Mutex<Option<WriteCheck>>>,
}

/// When writability was last asked, and the answer.
type WriteCheck = (Instant, std::result::Result<(), String>);

/// How long a readiness answer about writes is reused.
const WRITABLE_FOR: Duration = Duration::from_secs(5);

impl Ledger {
    /// Opens (creating a SQLite file if missing) the ledger at `database_url`; `migrate` then
    /// brings its schema up to date.
    pub async fn connect(database_url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(database_url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
        let (writer, reader) = match engine {
            Engine::Sqlite => (
                sqlite::pool(database_url, sqlite::Access::Write, 1, false).await?,
                sqlite::pool(database_url, sqlite::Access::ReadOnly, 4, true).await?,
            ),
            Engine::Postgres => (
                postgres::connect(database_url, 1).await?,
                postgres::connect(database_url, POSTGRES_OTHER_CONNECTIONS).await?,
            ),
        };
        let kept_on = (engine == Engine::Postgres).then(|| reader.clone());
        Ok(Self {
            engine,
            url: Arc::from(database_url),
            writer: group::Writer::new(engine, writer),
            bells: Arc::default(),
            statistics: statistics::Statistics::kept_on(kept_on),
            reader,
            writable: Arc::default(),
        })
    }

    /// Opens an existing ledger for reading (verify, export): on SQLite a mistyped path fails
    /// instead of creating an empty database that "verifies", and the audited file is not
    /// written to.
    pub async fn open_read_only(database_url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of(database_url).map_err(|e| sqlx::Error::Configuration(e.into()))?;
        let reader = match engine {
            Engine::Sqlite => {
                sqlite::pool(database_url, sqlite::Access::ReadOnly, 2, false).await?
            }
            Engine::Postgres => postgres::connect(database_url, 2).await?,
        };
        Ok(Self {
            engine,
            url: Arc::from(database_url),
            writer: group::Writer::new(engine, reader.clone()),
            bells: Arc::default(),
            statistics: statistics::Statistics::kept_on(None),
            reader,
            writable: Arc::default(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies the engine's migrations (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        let pool = self.writer.pool();
        match self.engine {
            Engine::Sqlite => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Engine::Postgres => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
    }

    /// Starts a write transaction holding the ledger's write lock: a savepoint in the writer's
    /// current group. On SQLite `BEGIN IMMEDIATE` opened the group (taking the write lock up
    /// front, so two processes on one file serialize instead of failing on a lock upgrade); on
    /// PostgreSQL the group holds the ledger's advisory lock.
    pub async fn begin(&self) -> Result<Tx> {
        self.begin_with(postgres::Lock::Ledger).await
    }

    /// A transaction that only claims or renews outbox jobs: on PostgreSQL it does not take
    /// the ledger's lock (its rows are locked instead), so claims never queue behind
    /// decisions. On SQLite it is an ordinary transaction on the one writer.
    async fn begin_outbox(&self) -> Result<Tx> {
        self.begin_with(postgres::Lock::Outbox).await
    }

    async fn begin_with(&self, lock: postgres::Lock) -> Result<Tx> {
        let (inner, head) = match (self.engine, lock) {
            (Engine::Postgres, postgres::Lock::Outbox) => (
                Open::Postgres(postgres::begin_outbox(&self.reader).await?),
                None,
            ),
            _ => {
                let (held, head) = self.writer.begin().await?;
                (Open::Group(held), head)
            }
        };
        Ok(Tx {
            engine: self.engine,
            bells: self.bells.clone(),
            statistics: self.statistics.clone(),
            inner: Some(inner),
            jobs: Vec::new(),
            head,
            later: batch::Batch::default(),
            handed_on: None,
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

    /// The bell a commit that filed jobs for `lane` rings.
    pub fn bell(&self, lane: Lane) -> &tokio::sync::Notify {
        self.bells.of(lane)
    }

    /// Rings the lanes' bells, and `wake`, when another replica commits jobs (PostgreSQL's
    /// `LISTEN`), until the returned task is aborted. On SQLite there is nobody to hear:
    /// other processes on one file find work by polling.
    pub fn wake_on_commits(
        &self,
        wake: Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self.engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(postgres::listen_for_jobs(
                self.url.to_string(),
                wake,
                self.bells.clone(),
            )),
        }
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

/// One write transaction: a member of the writer's group commit, so dropping it without
/// [`Tx::commit`] rolls back its own changes, and only its own. A PostgreSQL claim is a
/// transaction of its own, rolled back when dropped.
pub struct Tx {
    engine: Engine,
    bells: Arc<Bells>,
    statistics: Arc<statistics::Statistics>,
    inner: Option<Open>,
    /// Jobs filed by this transaction, inserted together at commit.
    jobs: Vec<(ProposalId, Job, DateTime<Utc>)>,
    /// The chain head once this transaction has read or extended it: the write lock is held,
    /// so nobody else can move it until commit.
    head: Option<(i64, String)>,
    /// SQLite: writes waiting to go to the writer with the next statement or the commit.
    later: batch::Batch,
    /// A lane's next job, claimed by this transaction's completion of the one before it.
    handed_on: Option<(Arc<outbox::HandOn>, ClaimedJob)>,
}

enum Open {
    /// A member of the writer's group.
    Group(group::Held),
    /// A PostgreSQL claim or renewal, under row locks only.
    Postgres(sqlx::Transaction<'static, Any>),
}

impl Tx {
    /// Makes the transaction durable: returns once the group it joined has committed (or, a
    /// PostgreSQL claim, once it has).
    pub async fn commit(mut self) -> Result<()> {
        let filed: Vec<Lane> = Lane::ALL
            .into_iter()
            .filter(|lane| self.jobs.iter().any(|(_, job, _)| job.lane() == *lane))
            .collect();
        let jobs = self.jobs.len();
        self.insert_jobs().await?;
        if !filed.is_empty() && self.engine == Engine::Postgres {
            self.later.append(&postgres::notify_jobs_filed(&filed));
        }
        let open = self
            .inner
            .take()
            .expect("an open transaction holds the writer");
        let mut later = std::mem::take(&mut self.later);
        match open {
            Open::Group(held) => held.commit(self.head.take(), later).await?,
            Open::Postgres(mut tx) => {
                later.run(&mut tx).await?;
                tx.commit().await?
            }
        }
        self.hand_on();
        for lane in filed {
            self.bells.ring(lane);
        }
        if jobs > 0 {
            self.statistics.filed(jobs);
        }
        Ok(())
    }

    /// The write connection, for a statement that may write: on SQLite the writes waiting in
    /// the batch are sent first, so the statement sees them and follows them, and the
    /// member's savepoint is open, so what the statement writes rolls back with the member.
    async fn conn(&mut self) -> Result<&mut AnyConnection> {
        self.connection(group::Next::Write).await
    }

    /// The write connection, for a statement that only reads: the waiting writes are sent
    /// first, but no savepoint is opened for it (a read has nothing to roll back).
    async fn read_conn(&mut self) -> Result<&mut AnyConnection> {
        self.connection(group::Next::Read).await
    }

    async fn connection(&mut self, next: group::Next) -> Result<&mut AnyConnection> {
        match self
            .inner
            .as_mut()
            .expect("an open transaction holds the writer")
        {
            Open::Group(held) => {
                held.run(&mut self.later, next).await?;
                Ok(held)
            }
            Open::Postgres(tx) => Ok(tx),
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        // A PostgreSQL transaction rolls itself back when dropped.
        if let Some(Open::Group(held)) = self.inner.as_mut() {
            group::abandon(held);
        }
    }
}
