//! (c) sustained proposals/s, each durable before its 201, beside the raw commit rate of
//! SQLite with the ledger's settings on the same disk.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::task::JoinSet;

use crate::harness::{Fixture, Server};
use crate::stats::Summary;

pub struct IntakeRate {
    pub clients: usize,
    pub created: usize,
    pub per_second: f64,
    pub latency: Summary,
    /// `proposal.created` events in the ledger afterwards: must equal `created`.
    pub in_ledger: i64,
}

/// `clients` concurrent automation clients (one token each, like separate SOAR workflows)
/// propose suspensions of distinct users for `duration`. The server's card-posting worker
/// runs at the same time, as it would: each proposal also costs the writer a card claim and
/// the recording of the card's ts.
pub async fn sustained_proposals(
    fixture: &Arc<Fixture>,
    server: &Arc<Server>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<IntakeRate> {
    server.settle().await?;
    let created_before = server.count_events("proposal.created").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        let token = server.token(&format!("bench-c{client}")).await?;
        let (fixture, server, stop) = (fixture.clone(), server.clone(), stop.clone());
        tasks.spawn(async move {
            let mut latencies = vec![];
            while !stop.load(Ordering::Relaxed) {
                let target = fixture.fresh_target()?;
                let started = Instant::now();
                let (status, _) = server.propose(&token, &target).await?;
                if status != 201 {
                    bail!("a proposal answered {status}");
                }
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let began = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = vec![];
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.context("a proposer panicked")??);
    }
    // Requests still in flight at the stop finish after it; count the time they took.
    let elapsed = began.elapsed();
    let in_ledger = server.count_events("proposal.created").await? - created_before;
    server.settle().await?;
    Ok(IntakeRate {
        clients,
        created: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latency: Summary::of(&latencies),
        in_ledger,
    })
}

/// Single-row `INSERT` transactions, one connection, WAL and `synchronous=FULL` — the
/// ledger's settings — on a fresh file in `dir`: the ceiling any durable write path on this
/// disk can reach one commit at a time.
pub async fn raw_commit_rate(dir: &Path, duration: Duration) -> anyhow::Result<f64> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("raw-commits.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    raw_commits(
        &pool,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        "INSERT INTO t (body) VALUES ($1)",
        duration,
    )
    .await
}

/// The same ceiling on PostgreSQL: single-row `INSERT` transactions on one connection to the
/// benchmark's database (its default `synchronous_commit=on`: each commit flushed).
pub async fn raw_postgres_commit_rate(
    database_url: &str,
    duration: Duration,
) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    raw_commits(
        &pool,
        "CREATE TABLE bench_raw (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
        "INSERT INTO bench_raw (body) VALUES ($1)",
        duration,
    )
    .await
}

/// Creates the table, then inserts one row per autocommit statement (each its own durable
/// transaction) for `duration`; commits a second.
async fn raw_commits<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    create: &str,
    insert: &str,
    duration: Duration,
) -> anyhow::Result<f64>
where
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(create).execute(pool).await?;
    let began = Instant::now();
    let mut commits = 0u64;
    while began.elapsed() < duration {
        sqlx::query(insert)
            .bind("a row about the size of a small ledger event payload ........")
            .execute(pool)
            .await?;
        commits += 1;
    }
    let rate = commits as f64 / began.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}
