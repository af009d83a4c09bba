//! Writes a SQLite transaction sends to the writer together. Each statement on sqlx's SQLite
//! connection is a round trip to the connection's worker thread, two thread wake-ups, and
//! those, not SQLite, were most of a decision's cost (BENCHMARKS.md, issue 25). A write whose
//! result nobody reads waits here and goes with the next statement that must follow it — a
//! read, a write whose result is read, the commit — as one multi-statement execute. On
//! PostgreSQL a write runs at once, as any statement does.

use std::borrow::Cow;

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Arguments, Encode, Executor, Type};

use super::{Engine, Result, Tx};

/// Values a batch holds before it is sent without waiting for a read or the commit: a long
/// run of writes (a bulk append) goes in parts, so the batch's text and memory stay bounded
/// (40 000 appends in one transaction took 8.5 s unbounded, 2.0 s in parts).
const SEND_AT: usize = 20_000;

/// Writes waiting to be sent, as one SQL text whose `$n` placeholders number every bound
/// value in order.
#[derive(Default)]
pub(super) struct Batch {
    sql: String,
    args: AnyArguments<'static>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    fn values(&self) -> usize {
        self.args.len()
    }

    /// Appends a statement written for its own `$1…`, renumbered to follow the values bound
    /// so far.
    fn push(&mut self, sql: &str) {
        renumber_into(&mut self.sql, sql, self.args.len());
        self.sql.push_str(";\n");
    }

    /// Prepends a statement without placeholders (the member's `SAVEPOINT`).
    pub fn prepend(&mut self, statement: &str) {
        self.sql.insert_str(0, &format!("{statement};\n"));
    }

    /// Appends a statement without placeholders (the member's `RELEASE`).
    pub fn append(&mut self, statement: &str) {
        self.sql.push_str(statement);
        self.sql.push_str(";\n");
    }

    /// Runs every waiting statement in one execute and empties the batch. A code path writes
    /// the same statements in the same order each time, so its batch is one text, prepared
    /// once and then found in the connection's statement cache. Statements without values (a
    /// savepoint's, PostgreSQL's only kind here) go as one simple query.
    pub async fn run(&mut self, conn: &mut AnyConnection) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.sql);
        let args = std::mem::take(&mut self.args);
        if args.len() == 0 {
            conn.execute(sql.as_str()).await?;
        } else {
            sqlx::query_with(&sql, args).execute(conn).await?;
        }
        Ok(())
    }
}

/// Copies `sql` onto `out` with each `$n` outside a quoted string or identifier raised by
/// `offset`.
fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d as usize;
                    chars.next();
                }
                out.push('$');
                out.push_str(&(n + offset).to_string());
                continue;
            }
            None => {}
        }
        out.push(c);
    }
}

/// A write whose result is not read: bind its values, then [`Write::run`].
pub(super) struct Write<'t> {
    tx: &'t mut Tx,
    sql: Cow<'static, str>,
    /// PostgreSQL's values; on SQLite they go straight into the batch.
    args: AnyArguments<'static>,
}

impl Tx {
    /// A write whose result nobody reads. On SQLite it joins the transaction's batch.
    pub(super) fn write(&mut self, sql: impl Into<Cow<'static, str>>) -> Write<'_> {
        let sql = sql.into();
        if self.engine == Engine::Sqlite {
            self.later.push(&sql);
        }
        Write {
            tx: self,
            sql,
            args: AnyArguments::default(),
        }
    }
}

impl Write<'_> {
    pub fn bind<T>(mut self, value: T) -> Self
    where
        T: Encode<'static, Any> + Type<Any> + 'static,
    {
        let args = match self.tx.engine {
            Engine::Sqlite => &mut self.tx.later.args,
            Engine::Postgres => &mut self.args,
        };
        // Encoding into `Any`'s buffer only copies the value; it cannot fail for the types
        // the ledger binds, and a failure would surface as a missing value at execute.
        let _ = args.add(value);
        self
    }

    /// Runs the write (PostgreSQL), or leaves it in the batch for the next statement or the
    /// commit to carry (SQLite).
    pub async fn run(self) -> Result<()> {
        let Write { tx, sql, args } = self;
        match tx.engine {
            Engine::Sqlite if tx.later.values() >= SEND_AT => tx.conn().await.map(|_| ()),
            Engine::Sqlite => Ok(()),
            Engine::Postgres => {
                sqlx::query_with(&sql, args)
                    .execute(tx.conn().await?)
                    .await?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renumbered(sql: &str, offset: usize) -> String {
        let mut out = String::new();
        renumber_into(&mut out, sql, offset);
        out
    }

    #[test]
    fn placeholders_follow_the_values_bound_before_them() {
        assert_eq!(
            renumbered("UPDATE t SET a = $1, b = $2 WHERE id = $10", 3),
            "UPDATE t SET a = $4, b = $5 WHERE id = $13"
        );
    }

    #[test]
    fn a_dollar_inside_quotes_is_left_as_written() {
        assert_eq!(
            renumbered("SELECT '$1', \"$2\" WHERE x = $1", 5),
            "SELECT '$1', \"$2\" WHERE x = $6"
        );
    }

    #[test]
    fn a_dollar_without_digits_is_not_a_placeholder() {
        assert_eq!(renumbered("SELECT $ + $a", 2), "SELECT $ + $a");
    }
}
