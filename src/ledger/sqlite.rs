//! The SQLite engine: one file in WAL mode, `synchronous=FULL`, foreign keys on, one writer
//! connection whose transactions share commits ([`super::group`]) and a small pool of
//! readers. Connections go through sqlx's `Any` driver like PostgreSQL's, so the ledger's
//! statements are written once; the settings sqlx's SQLite options would carry are set here.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use super::Result;

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Creates the file when missing.
    Write,
    /// Never writes, never creates: a mistyped path fails instead of "verifying" an empty
    /// ledger.
    ReadOnly,
}

/// `database_url` with the open mode sqlx's SQLite driver reads from the URL.
fn with_mode(database_url: &str, access: Access) -> String {
    if database_url.contains("mode=") || database_url.contains(":memory:") {
        return database_url.to_owned();
    }
    let mode = match access {
        Access::Write => "rwc",
        Access::ReadOnly => "ro",
    };
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}mode={mode}")
}

pub(super) async fn pool(
    database_url: &str,
    access: Access,
    connections: u32,
    lazy: bool,
) -> Result<AnyPool> {
    let pragmas = match access {
        Access::Write => format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
            BUSY_TIMEOUT.as_millis()
        ),
        Access::ReadOnly => format!("PRAGMA busy_timeout = {};", BUSY_TIMEOUT.as_millis()),
    };
    let options = AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                conn.execute(pragmas.as_str()).await?;
                Ok(())
            })
        });
    let url = with_mode(database_url, access);
    if lazy {
        options.connect_lazy(&url)
    } else {
        options.connect(&url).await
    }
}

/// A native read-only connection (no `Any` copy of each row), for streaming the whole chain.
pub(super) async fn read_only_connection(database_url: &str) -> Result<sqlx::SqliteConnection> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;
    let options: SqliteConnectOptions = with_mode(database_url, Access::ReadOnly).parse()?;
    options.busy_timeout(BUSY_TIMEOUT).connect().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_creates_the_file_and_a_reader_never_does() {
        assert_eq!(
            with_mode("sqlite://c.db", Access::Write),
            "sqlite://c.db?mode=rwc"
        );
        assert_eq!(
            with_mode("sqlite://c.db", Access::ReadOnly),
            "sqlite://c.db?mode=ro"
        );
        assert_eq!(
            with_mode("sqlite://c.db?mode=ro", Access::Write),
            "sqlite://c.db?mode=ro"
        );
    }
}
