//! (d) ledger append and verify throughput at a million events, through the ledger's own
//! code (`Ledger::begin`, `Tx::append`, `Ledger::verify`) on a database of its own.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use countersign::domain::ProposalId;
use countersign::ledger::{EventKind, Ledger};
use serde_json::json;

use crate::harness::AS_COUNTERSIGN;

pub struct LedgerThroughput {
    /// One event per transaction: each append pays a commit (an fsync).
    pub single_per_second: f64,
    pub single_events: u64,
    /// `batch` events per transaction: the cost of hashing and inserting alone.
    pub batched_per_second: f64,
    pub batched_events: u64,
    pub batch: u64,
    pub verify_events: u64,
    pub verify_per_second: f64,
    /// `countersign ledger verify` as an operator runs it, process start included.
    pub cli_verify: Duration,
    /// Verify's two floors: the chain's rows streamed through sqlx's native SQLite driver
    /// and dropped, and one core hashing them as verify does (from their stored text).
    pub read_per_second: f64,
    pub hash_per_second_one_core: f64,
}

const EVENTS: &str = "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
                      FROM ledger_events ORDER BY seq";

type Row = (
    i64,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// Rows a second, streamed through sqlx's native SQLite driver and dropped.
async fn read_rate(url: &str) -> anyhow::Result<f64> {
    use futures_util::StreamExt;
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=ro")).await?;
    let began = Instant::now();
    let mut rows = sqlx::query_as::<_, Row>(EVENTS).fetch(&mut conn);
    let mut n = 0u64;
    while let Some(row) = rows.next().await {
        row?;
        n += 1;
    }
    Ok(n as f64 / began.elapsed().as_secs_f64())
}

/// Events a second one core hashes from their columns, as verify does.
async fn hash_rate(url: &str) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=ro")).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!("{EVENTS} LIMIT 200000"))
        .fetch_all(&mut conn)
        .await?;
    let began = Instant::now();
    let held = rows
        .iter()
        .filter(|(seq, proposal, at, kind, actor, payload, prev, hash)| {
            countersign::ledger::chain::event_hash_of_text(
                prev,
                *seq,
                proposal.as_deref(),
                at,
                kind,
                actor,
                payload,
            ) == *hash
        })
        .count();
    let rate = rows.len() as f64 / began.elapsed().as_secs_f64();
    if held != rows.len() {
        bail!(
            "{} of {} rows did not hash from their stored text",
            rows.len() - held,
            rows.len()
        );
    }
    Ok(rate)
}

/// A typical event: an approval with its approver's name and email.
fn append_args(i: u64) -> (Option<ProposalId>, EventKind, String, serde_json::Value) {
    let user = format!("U0BENCH{:05}", i % 1000);
    let payload = json!({
        "slack_user_id": user, "name": format!("Approver {}", i % 1000),
        "email": format!("approver{}@example.com", i % 1000), "approvals": 1, "required": 1,
    });
    (
        Some(ProposalId::new()),
        EventKind::ApprovalRecorded,
        format!("slack:{user}"),
        payload,
    )
}

async fn append_in_transactions(ledger: &Ledger, events: u64, per_tx: u64) -> anyhow::Result<()> {
    let mut done = 0;
    while done < events {
        let mut tx = ledger.begin().await?;
        for _ in 0..per_tx.min(events - done) {
            let (proposal, kind, actor, payload) = append_args(done);
            tx.append(proposal, kind, &actor, payload, Utc::now())
                .await?;
            done += 1;
        }
        tx.commit().await?;
    }
    Ok(())
}

pub async fn throughput(
    dir: &Path,
    total: u64,
    batch: u64,
    single_for: Duration,
) -> anyhow::Result<LedgerThroughput> {
    let database = dir.join("ledger-1m.db");
    let url = format!("sqlite://{}", database.display());
    let ledger = Ledger::connect(&url).await?;
    ledger.migrate().await?;

    // Single-event transactions first, on a small table, for `single_for`.
    let began = Instant::now();
    let mut single_events = 0;
    while began.elapsed() < single_for {
        append_in_transactions(&ledger, 1, 1).await?;
        single_events += 1;
    }
    let single_per_second = single_events as f64 / began.elapsed().as_secs_f64();

    // Then the rest of the million in batches, with progress on stderr.
    let batched_events = total.saturating_sub(single_events);
    let began = Instant::now();
    let mut appended = 0;
    while appended < batched_events {
        let chunk = 100_000.min(batched_events - appended);
        append_in_transactions(&ledger, chunk, batch).await?;
        appended += chunk;
        eprintln!("  appended {appended} of {batched_events}");
    }
    let batched_per_second = batched_events as f64 / began.elapsed().as_secs_f64();

    let began = Instant::now();
    let head = match ledger.verify(&[]).await? {
        Ok(head) => head,
        Err(broken) => bail!("the benchmark's own ledger does not verify: {broken}"),
    };
    let verify_per_second = head.events as f64 / began.elapsed().as_secs_f64();
    ledger.close().await;

    let cli_verify = cli_verify(&url)?;
    let read_per_second = read_rate(&url).await?;
    let hash_per_second_one_core = hash_rate(&url).await?;
    Ok(LedgerThroughput {
        read_per_second,
        hash_per_second_one_core,
        single_per_second,
        single_events,
        batched_per_second,
        batched_events,
        batch,
        verify_events: head.events,
        verify_per_second,
        cli_verify,
    })
}

/// Runs `countersign ledger verify` (this binary as countersign) and times it.
fn cli_verify(database_url: &str) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let output = Command::new(std::env::current_exe()?)
        .args([AS_COUNTERSIGN, "ledger", "verify"])
        .env("DATABASE_URL", database_url)
        .output()
        .context("run ledger verify")?;
    let took = began.elapsed();
    if !output.status.success() {
        bail!(
            "ledger verify failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(took)
}
