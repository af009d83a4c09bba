//! Which database holds the ledger, and the few phrases of SQL the two engines spell
//! differently. Everything else the ledger says is written once, in SQL both understand
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`), and runs through sqlx's `Any` driver.

use std::fmt;

/// The advisory lock key every PostgreSQL ledger transaction takes (for operators: a session
/// holding it stops every replica's writes).
pub const POSTGRES_WRITE_LOCK: i64 = super::postgres::LEDGER_LOCK;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One file, one writer (with group commit), nothing to run: the default.
    Sqlite,
    /// A shared database for several replicas.
    Postgres,
}

impl Engine {
    /// The engine a `DATABASE_URL` names, by its scheme.
    pub fn of(database_url: &str) -> Result<Self, UnknownEngine> {
        let scheme = database_url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            _ => Err(UnknownEngine(scheme.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// The text at `path` inside the JSON held in a TEXT `column`. PostgreSQL cannot turn a
    /// JSON `\u0000` (NUL, which serde writes for it) into text, and fails the whole query on
    /// any document holding one; such an escape is read as U+FFFD instead (the document keeps
    /// it), so a ledger holding NUL from before free text was checked still reads.
    pub(super) fn json_text(self, column: &str, path: &[&str]) -> String {
        match self {
            Engine::Sqlite => format!("json_extract({column}, '$.{}')", path.join(".")),
            Engine::Postgres => format!(
                "(replace({column}, E'\\\\u0000', E'\\\\ufffd')::json #>> '{{{}}}')",
                path.join(",")
            ),
        }
    }

    /// Appended to a `SELECT` whose rows the transaction goes on to change: on PostgreSQL a
    /// transaction that does not hold the ledger's write lock (a claim) may otherwise change
    /// them in between. SQLite's one writer already excludes everyone else.
    pub(super) fn for_update(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        }
    }

    /// Appended to the `SELECT` that picks a job to claim: replicas claiming at once each
    /// take a different row instead of queueing on the same one.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Opens a group of write transactions holding the ledger's write lock until it commits:
    /// SQLite's `BEGIN IMMEDIATE` takes the file's lock up front (two processes on one file
    /// serialize instead of failing on a lock upgrade); PostgreSQL's takes the advisory lock.
    pub(super) fn begin_group(self) -> String {
        match self {
            Engine::Sqlite => "BEGIN IMMEDIATE".to_owned(),
            Engine::Postgres => format!(
                "BEGIN; SELECT pg_advisory_xact_lock({})",
                POSTGRES_WRITE_LOCK
            ),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("DATABASE_URL must start with sqlite:// or postgres:// (found {0:?})")]
pub struct UnknownEngine(String);

/// `($1, $2, …), (…)`: the VALUES of a multi-row INSERT of `rows` rows of `columns` columns.
pub(super) fn values_list(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_names_the_engine() {
        assert_eq!(Engine::of("sqlite://c.db").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("sqlite::memory:").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("postgres://u@h/db").unwrap(), Engine::Postgres);
        assert_eq!(Engine::of("postgresql://u@h/db").unwrap(), Engine::Postgres);
        assert!(Engine::of("mysql://u@h/db").is_err());
        assert!(Engine::of("c.db").is_err());
    }

    #[test]
    fn a_values_list_numbers_parameters_row_by_row() {
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn json_paths_are_spelled_for_each_engine() {
        assert_eq!(
            Engine::Sqlite.json_text("document", &["target", "email"]),
            "json_extract(document, '$.target.email')"
        );
        assert_eq!(
            Engine::Postgres.json_text("document", &["target", "email"]),
            "(replace(document, E'\\\\u0000', E'\\\\ufffd')::json #>> '{target,email}')"
        );
    }
}
