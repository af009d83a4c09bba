//! The PostgreSQL engine, for replicas that share one ledger. Each replica writes on one
//! connection whose group of transactions ([`super::group`]) first takes the ledger's write
//! lock (a transaction-level advisory lock) and holds it until the group commits: groups that
//! decide and append run one at a time across every replica, as on SQLite's single writer, so
//! the chain stays one gapless `seq` and a decision read in a transaction cannot be overtaken
//! by another replica's. Claims and lease renewals touch only outbox rows and do not take it;
//! they use row locks (`FOR UPDATE SKIP LOCKED`) on a pool of their own. Replicas wake one
//! another with `LISTEN/NOTIFY`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgListener;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::Notify;

use super::bells::{self, Bells};
use super::{Lane, Result};

/// Advisory lock keys (one 64-bit space per database): the ledger's write lock, and the one
/// that makes 1Password claims take turns, so two replicas never start two actions for one
/// user. The values are arbitrary; they spell "cs-ledgr" and "cs-1pclm".
pub(super) const LEDGER_LOCK: i64 = 0x6373_2d6c_6564_6772;
const ONEPASSWORD_CLAIMS: i64 = 0x6373_2d31_7063_6c6d;

/// The channel a commit that filed jobs notifies.
const WAKE_CHANNEL: &str = "countersign_outbox";

/// How long a statement waits for a lock (the ledger's, or a row another holds) before it
/// fails, as SQLite's busy timeout does: a stray session holding the lock must not hang every
/// decision, or readiness, for ever.
const LOCK_TIMEOUT: &str = "10s";

pub(super) async fn connect(database_url: &str, connections: u32) -> Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(connections)
        // Set once per connection rather than per transaction: a round trip saved on each.
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(
                    conn,
                    format!("SET lock_timeout = '{LOCK_TIMEOUT}'").as_str(),
                )
                .await?;
                Ok(())
            })
        })
        // Queueing for a connection is queueing for the write lock: as patient as SQLite's
        // writer queue, within reason.
        .acquire_timeout(Duration::from_secs(30))
        .connect(database_url)
        .await
}

/// Which transactions take the ledger's write lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// Everything that reads to decide, or appends to the chain.
    Ledger,
    /// A claim or a renewal: outbox rows only, under row locks.
    Outbox,
}

/// A claim's or a renewal's transaction: row locks only, never the ledger's lock.
pub(super) async fn begin_outbox(pool: &AnyPool) -> Result<Transaction<'static, Any>> {
    pool.begin().await
}

/// Makes this claim wait for any other replica's 1Password claim: the per-user rule reads
/// which jobs are running, and two claims reading at once could each start one for the same
/// user. Held until the claim commits.
pub(super) async fn serialize_onepassword_claims(conn: &mut sqlx::AnyConnection) -> Result<()> {
    take(conn, ONEPASSWORD_CLAIMS).await
}

async fn take(conn: &mut sqlx::AnyConnection, key: i64) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement that tells every replica's lanes of `lanes` that jobs were filed for them:
/// queued in the transaction that filed them, PostgreSQL delivers it when (and only if) that
/// commits. It has no values (the lanes' names are this code's own words), so it goes with the
/// member's release instead of costing a round trip of its own under the ledger's lock.
pub(super) fn notify_jobs_filed(lanes: &[Lane]) -> String {
    format!("NOTIFY {WAKE_CHANNEL}, '{}'", bells::spell(lanes))
}

/// Rings the bells of the lanes any replica commits jobs for, and `wake`, until the process
/// ends. A lost connection is reconnected; notifications sent meanwhile are missed, which the
/// workers' polling covers.
pub(super) fn listen_for_jobs(
    database_url: String,
    wake: Arc<Notify>,
    bells: Arc<Bells>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match PgListener::connect(&database_url).await {
                Ok(mut listener) => {
                    if let Err(error) = listener.listen(WAKE_CHANNEL).await {
                        tracing::warn!(%error, "LISTEN failed; retrying");
                    } else {
                        // A reconnect may have missed notifications: look now.
                        bells.ring_all();
                        wake.notify_waiters();
                        loop {
                            match listener.recv().await {
                                Ok(notification) => {
                                    for lane in bells::read(notification.payload()) {
                                        bells.ring(lane);
                                    }
                                    wake.notify_waiters();
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "lost the LISTEN connection");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot LISTEN for jobs; polling only"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}
