//! `Ledger::verify` at hashing speed: the events are read in batches on a native connection
//! (no `Any` copy of each row), hashed on the blocking pool while the next batch is read, and
//! linked in order. A payload is hashed from its stored text when that text is its canonical
//! JSON (as countersign writes it); only a row whose text is not is parsed and canonicalised.
//! The chain rule is `chain::event_hash`'s, unchanged.
//!
//! On SQLite a batch is one row: SQLite writes the batch's events into one text (each column
//! length-prefixed), which is split here. Handed over one row at a time, sqlx's SQLite worker
//! read about 250 k rows a second, a sixth of what one core hashes.

use std::sync::LazyLock;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use sqlx::Connection;

use super::chain::{self, BreakKind, ChainBreak, ChainHead, Verifier};
use super::{Engine, Ledger, Result};

/// Rows hashed together; two halves run at once while the next batch is read.
const BATCH: usize = 8192;

const EVENTS: &str = "SELECT seq, proposal_id, at, kind, actor, payload, prev_hash, hash
                      FROM ledger_events ORDER BY seq";

/// An event's columns as stored, its payload as text.
#[derive(sqlx::FromRow)]
struct RawEvent {
    seq: i64,
    proposal_id: Option<String>,
    at: String,
    kind: String,
    actor: String,
    payload: String,
    prev_hash: String,
    hash: String,
}

impl RawEvent {
    /// Whether the columns give the stored hash.
    fn holds(&self) -> bool {
        let fast = chain::event_hash_of_text(
            &self.prev_hash,
            self.seq,
            self.proposal_id.as_deref(),
            &self.at,
            &self.kind,
            &self.actor,
            &self.payload,
        );
        if fast == self.hash {
            return true;
        }
        // Not canonical as stored (another writer's spacing, or an edit): the slow path.
        let payload = serde_json::from_str(&self.payload)
            .unwrap_or_else(|_| serde_json::Value::String(self.payload.clone()));
        let slow = chain::event_hash(
            &self.prev_hash,
            self.seq,
            self.proposal_id.as_deref(),
            &self.at,
            &self.kind,
            &self.actor,
            &payload,
        );
        slow == self.hash
    }
}

/// Which of the batch's events hold their hash, computed in two halves off the async threads.
async fn hash_batch(batch: Vec<RawEvent>) -> (Vec<RawEvent>, Vec<bool>) {
    let mut first = batch;
    let second = first.split_off(first.len() / 2);
    let hash_all = |events: Vec<RawEvent>| {
        move || {
            let held: Vec<bool> = events.iter().map(RawEvent::holds).collect();
            (events, held)
        }
    };
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(hash_all(first)),
        tokio::task::spawn_blocking(hash_all(second)),
    );
    let ((mut events, mut held), (rest, rest_held)) = (
        a.expect("hashing never panics"),
        b.expect("hashing never panics"),
    );
    events.extend(rest);
    held.extend(rest_held);
    (events, held)
}

/// The events after `$1`, skipping `$3` of them, up to `$2`, as one text: for each, its seq
/// and `:`, then each other column as `-` (NULL) or its length in bytes, `:` and its text.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    // `concat` builds each record in one allocation (a chain of `||` copies it once a column),
    // and `octet_length` counts bytes without copying the text.
    let columns: Vec<String> = [
        "proposal_id",
        "at",
        "kind",
        "actor",
        "payload",
        "prev_hash",
        "hash",
    ]
    .iter()
    .map(|name| {
        format!("CASE WHEN {name} IS NULL THEN '-' ELSE octet_length({name}) || ':' END, {name}")
    })
    .collect();
    format!(
        "SELECT string_agg(concat(seq, ':', {}), '')
         FROM (SELECT * FROM ledger_events WHERE seq > $1 ORDER BY seq LIMIT $2 OFFSET $3)",
        columns.join(", ")
    )
});

/// Splits a page of [`PAGE`] into its events.
fn split_page(page: &str) -> std::result::Result<Vec<RawEvent>, String> {
    let mut rest = page;
    let mut events = Vec::with_capacity(BATCH);
    // The text up to the next `:`, and what follows it.
    fn number(rest: &mut &str) -> std::result::Result<i64, String> {
        let (digits, after) = rest.split_once(':').ok_or("a page ended inside a number")?;
        *rest = after;
        digits
            .parse()
            .map_err(|_| format!("{digits:?} is not a length"))
    }
    fn column(rest: &mut &str) -> std::result::Result<Option<String>, String> {
        if let Some(after) = rest.strip_prefix('-') {
            *rest = after;
            return Ok(None);
        }
        let len = usize::try_from(number(rest)?).map_err(|_| "a negative length")?;
        let text = rest.get(..len).ok_or("a column ran past its page")?;
        *rest = &rest[len..];
        Ok(Some(text.to_owned()))
    }
    fn required(rest: &mut &str) -> std::result::Result<String, String> {
        column(rest)?.ok_or_else(|| "a NOT NULL column read as NULL".to_owned())
    }
    while !rest.is_empty() {
        events.push(RawEvent {
            seq: number(&mut rest)?,
            proposal_id: column(&mut rest)?,
            at: required(&mut rest)?,
            kind: required(&mut rest)?,
            actor: required(&mut rest)?,
            payload: required(&mut rest)?,
            prev_hash: required(&mut rest)?,
            hash: required(&mut rest)?,
        });
    }
    Ok(events)
}

/// Where the walk reads its batches from.
enum Source<'c> {
    /// Rows streamed one at a time (PostgreSQL).
    Rows(BoxStream<'c, Result<RawEvent>>),
    /// SQLite: two pages at once after the last seq read, one on each connection, since
    /// building a page's text keeps one core busy.
    Pages {
        conns: [&'c mut sqlx::SqliteConnection; 2],
        after: i64,
    },
}

/// The events of [`PAGE`] after `after`, skipping `skip` of them, in seq order.
async fn page(conn: &mut sqlx::SqliteConnection, after: i64, skip: usize) -> Result<Vec<RawEvent>> {
    let page: Option<String> = sqlx::query_scalar(&PAGE)
        .bind(after)
        .bind(BATCH as i64)
        .bind(skip as i64)
        .fetch_one(conn)
        .await?;
    let mut events = split_page(page.as_deref().unwrap_or_default())
        .map_err(|why| sqlx::Error::Decode(format!("ledger_events: {why}").into()))?;
    // SQLite aggregates a subquery's rows in its order, but does not promise to (an `ORDER BY`
    // inside the aggregate sorts them again): put right here what came otherwise. A sorted
    // page costs one pass.
    events.sort_by_key(|event| event.seq);
    Ok(events)
}

impl Source<'_> {
    async fn next_batch(&mut self) -> Result<Vec<RawEvent>> {
        match self {
            Source::Rows(rows) => next_batch(rows).await,
            Source::Pages {
                conns: [first, second],
                after,
            } => {
                let (first, second) =
                    tokio::join!(page(first, *after, 0), page(second, *after, BATCH));
                let mut events = first?;
                let second = second?;
                // The two connections may read different moments of a ledger being written
                // to. The second page follows the first only when the first is full and the
                // second starts after it; otherwise it is read again next time.
                let follows = match (events.last(), second.first()) {
                    (Some(last), Some(next)) => events.len() == BATCH && next.seq > last.seq,
                    _ => false,
                };
                if follows {
                    events.extend(second);
                }
                if let Some(last) = events.last() {
                    *after = last.seq;
                }
                Ok(events)
            }
        }
    }
}

/// Reads up to [`BATCH`] events from `rows`.
async fn next_batch<S>(rows: &mut S) -> Result<Vec<RawEvent>>
where
    S: Stream<Item = Result<RawEvent>> + Unpin,
{
    let mut batch = Vec::with_capacity(BATCH);
    while batch.len() < BATCH {
        match rows.next().await {
            Some(row) => batch.push(row?),
            None => break,
        }
    }
    Ok(batch)
}

/// Walks the chain from `source`: each batch is hashed while the next is read.
async fn walk(mut source: Source<'_>) -> Result<std::result::Result<ChainHead, (ChainBreak, i64)>> {
    let mut verifier = Verifier::default();
    let mut hashing: Option<tokio::task::JoinHandle<(Vec<RawEvent>, Vec<bool>)>> = None;
    loop {
        let batch = source.next_batch().await?;
        if let Some(hashed) = hashing.take() {
            let (events, held) = hashed.await.expect("hashing never panics");
            for (event, holds) in events.iter().zip(held) {
                if let Err(broken) =
                    verifier.check_link(event.seq, &event.prev_hash, &event.hash, holds)
                {
                    return Ok(Err((broken, event.seq)));
                }
            }
        }
        if batch.is_empty() {
            return Ok(Ok(verifier.finish()));
        }
        hashing = Some(tokio::spawn(hash_batch(batch)));
    }
}

impl Ledger {
    /// Recomputes the whole chain, streamed so memory stays flat at any size, and checks that
    /// it still holds each `checkpoint` (a seq and the hash it had).
    pub async fn verify(
        &self,
        checkpoints: &[(i64, String)],
    ) -> Result<std::result::Result<ChainHead, ChainBreak>> {
        let walked = match self.engine {
            Engine::Sqlite => {
                let mut first = super::sqlite::read_only_connection(&self.url).await?;
                let mut second = super::sqlite::read_only_connection(&self.url).await?;
                // From the lowest seq there could be: a row put in by hand below 1 is a break.
                let walked = walk(Source::Pages {
                    conns: [&mut first, &mut second],
                    after: i64::MIN,
                })
                .await;
                first.close().await?;
                second.close().await?;
                walked?
            }
            Engine::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let rows = sqlx::query_as::<_, RawEvent>(EVENTS).fetch(&mut conn);
                let walked = walk(Source::Rows(rows)).await;
                conn.close().await?;
                walked?
            }
        };
        let head = match walked {
            Ok(head) => head,
            Err((broken, seq)) => return Ok(Err(self.explain_break(broken, seq).await?)),
        };
        for (seq, hash) in checkpoints {
            if let Some(broken) = self.check_checkpoint(&head, *seq, hash).await? {
                return Ok(Err(broken));
            }
        }
        Ok(Ok(head))
    }

    /// Tells a deleted event from a reordered one, for the event at `seq`.
    async fn explain_break(&self, broken: ChainBreak, seq: i64) -> Result<ChainBreak> {
        if broken.kind != BreakKind::Unlinked {
            return Ok(broken);
        }
        match self.events(seq - 1, 1).await?.into_iter().next() {
            Some(event) => self.explain(broken, &event).await,
            None => Ok(broken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One event as [`PAGE`] writes it.
    fn record(seq: i64, columns: [Option<&str>; 7]) -> String {
        let mut out = format!("{seq}:");
        for column in columns {
            match column {
                None => out.push('-'),
                Some(text) => out.push_str(&format!("{}:{text}", text.len())),
            }
        }
        out
    }

    #[test]
    fn a_page_splits_into_its_events_with_nulls_and_multibyte_text_intact() {
        let at = "2026-12-07T00:00:00.000000Z";
        let page = record(
            7,
            [
                None,
                Some(at),
                Some("k"),
                Some("ACé"),
                Some(r#"{"a":"é:1"}"#),
                Some("p"),
                Some("h"),
            ],
        ) + &record(
            8,
            [
                Some("abc"),
                Some(at),
                Some("k"),
                Some("a"),
                Some("{}"),
                Some("h"),
                Some("i"),
            ],
        );

        let events = split_page(&page).unwrap();

        assert_eq!(events.len(), 2);
        assert_eq!((events[0].seq, events[0].proposal_id.as_deref()), (7, None));
        assert_eq!(
            (events[0].actor.as_str(), events[0].payload.as_str()),
            ("ACé", r#"{"a":"é:1"}"#)
        );
        assert_eq!(
            (
                events[1].seq,
                events[1].proposal_id.as_deref(),
                events[1].hash.as_str()
            ),
            (8, Some("abc"), "i")
        );
    }

    #[test]
    fn a_page_cut_short_is_an_error_not_a_panic() {
        assert!(split_page("7:-3:ab").is_err());
        assert!(split_page("7:-99999999999999999999:").is_err());
        assert!(split_page("x:").is_err());
        // A length that ends inside a character.
        assert!(split_page("7:-1:é1:k1:a2:{}1:p1:h").is_err());
    }
}
