#![allow(dead_code)]
//! Which engine the black-box suite runs on, and a fresh, empty database on it for each test.
//!
//! `COUNTERSIGN_TEST_ENGINE=postgres` runs the same tests on PostgreSQL: each test gets its
//! own database, created on the server `COUNTERSIGN_TEST_POSTGRES` names (`.ci/postgres`
//! starts a throwaway one). Unset, or `sqlite`, each test gets a SQLite file in its temp dir.

use std::path::Path;

use sqlx::{Connection, Executor};

pub const ENGINE_VARIABLE: &str = "COUNTERSIGN_TEST_ENGINE";
pub const SERVER_VARIABLE: &str = "COUNTERSIGN_TEST_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The engine this run of the suite is for.
pub fn engine() -> Engine {
    match std::env::var(ENGINE_VARIABLE).as_deref() {
        Ok("postgres") => Engine::Postgres,
        Ok("sqlite") | Err(_) => Engine::Sqlite,
        Ok(other) => panic!("{ENGINE_VARIABLE}={other:?}: say sqlite or postgres"),
    }
}

/// The PostgreSQL server tests may create databases on. `None` (with a message) when it is
/// not set, so PostgreSQL-only tests skip on a laptop; under `CI=true` it is required.
pub fn postgres_server() -> Option<String> {
    match std::env::var(SERVER_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true: {SERVER_VARIABLE} must name a PostgreSQL server (.ci/postgres start)")
        }
        _ => {
            eprintln!("skipped: {SERVER_VARIABLE} is not set, so there is no PostgreSQL to run on");
            None
        }
    }
}

/// A fresh, empty ledger database for one test, on this run's engine.
pub async fn fresh(dir: &Path) -> String {
    match engine() {
        Engine::Sqlite => format!("sqlite://{}", dir.join("countersign.db").display()),
        Engine::Postgres => {
            let server = std::env::var(SERVER_VARIABLE).unwrap_or_else(|_| {
                panic!("{ENGINE_VARIABLE}=postgres needs {SERVER_VARIABLE} (.ci/postgres start)")
            });
            fresh_postgres(&server).await
        }
    }
}

/// A fresh, migrated ledger on this run's engine, and the temp dir that holds it (kept alive
/// by the caller for as long as the ledger is used).
pub async fn fresh_ledger() -> (countersign::ledger::Ledger, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh(dir.path()).await;
    let ledger = countersign::ledger::Ledger::connect(&url).await.unwrap();
    ledger.migrate().await.unwrap();
    (ledger, dir)
}

/// A new database on the PostgreSQL `server`; its URL.
pub async fn fresh_postgres(server: &str) -> String {
    let name = format!("cs_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the test PostgreSQL server");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    let mut url = url::Url::parse(server).expect("a PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}

/// Runs `statement` on the test's database directly, as an operator (or an attacker with
/// the database's credentials) would, bypassing countersign.
pub async fn execute(database_url: &str, statement: &str) -> Result<u64, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await?;
    let done = conn.execute(statement).await?.rows_affected();
    let _ = conn.close().await;
    Ok(done)
}

/// The statements that lift the append-only triggers from `ledger_events`.
pub fn drop_append_only_triggers(database_url: &str) -> Vec<&'static str> {
    if database_url.starts_with("postgres") {
        vec![
            "DROP TRIGGER IF EXISTS ledger_events_no_update ON ledger_events",
            "DROP TRIGGER IF EXISTS ledger_events_no_delete ON ledger_events",
        ]
    } else {
        vec![
            "DROP TRIGGER IF EXISTS ledger_events_no_update",
            "DROP TRIGGER IF EXISTS ledger_events_no_delete",
        ]
    }
}

/// A pool on the test's database, outside countersign.
pub async fn pool(database_url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("connect to the test database")
}

/// Another client holding the ledger's write lock until dropped (SQLite's `BEGIN IMMEDIATE`,
/// PostgreSQL's advisory lock countersign's writers take).
pub async fn hold_write_lock(database_url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("connect to the test database");
    if database_url.starts_with("postgres") {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(countersign::ledger::engine::POSTGRES_WRITE_LOCK)
            .execute(&mut conn)
            .await
            .expect("take the ledger's lock");
    } else {
        conn.execute("BEGIN IMMEDIATE")
            .await
            .expect("take the write lock");
    }
    conn
}
