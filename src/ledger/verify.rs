//! `Ledger::verify` at hashing speed: the events are streamed on a native connection (no
//! `Any` copy of each row), hashed in batches on the blocking pool while the next batch is
//! read, and linked in order. A payload is hashed from its stored text when that text is its
//! canonical JSON (as countersign writes it); only a row whose text is not is parsed and
//! canonicalised. The chain rule is `chain::event_hash`'s, unchanged.

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

/// Walks the chain from `rows`: each batch is hashed while the next is read.
async fn walk<S>(mut rows: S) -> Result<std::result::Result<ChainHead, (ChainBreak, i64)>>
where
    S: Stream<Item = Result<RawEvent>> + Unpin,
{
    let mut verifier = Verifier::default();
    let mut hashing: Option<tokio::task::JoinHandle<(Vec<RawEvent>, Vec<bool>)>> = None;
    loop {
        let batch = next_batch(&mut rows).await?;
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
                let mut conn = super::sqlite::read_only_connection(&self.url).await?;
                let walked = walk(sqlx::query_as::<_, RawEvent>(EVENTS).fetch(&mut conn)).await;
                conn.close().await?;
                walked?
            }
            Engine::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let walked = walk(sqlx::query_as::<_, RawEvent>(EVENTS).fetch(&mut conn)).await;
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
