//! Group commit on the ledger's one write connection (SQLite's single writer; on PostgreSQL
//! each replica's connection that holds the ledger's lock). Transactions that queue behind one
//! another share one transaction — SQLite's `BEGIN IMMEDIATE`, or PostgreSQL's `BEGIN` and
//! the ledger's advisory lock — each inside its own `SAVEPOINT` (one that fails or is dropped
//! rolls back alone), and the last of a group — the one that finds nobody waiting behind it —
//! commits for all, with one flush. Every member hears the commit's result before its
//! `commit()` returns, so nothing is acknowledged before it is durable. On PostgreSQL the lock
//! is held from the group's first member to its commit, so the chain head a group reads stays
//! its own; other replicas' groups take turns with it.
//!
//! On SQLite a member's `SAVEPOINT` goes with its first batch of writes ([`super::batch`])
//! and its `RELEASE` with its last, so a decision costs the writer its reads, one batch and
//! its share of the commit. PostgreSQL runs each write at once (its protocol carries one
//! statement with values at a time), so there the savepoint opens with the member.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use super::batch::Batch;
use super::Engine;

/// The most transactions one commit carries, so a steady stream still reaches the disk.
const MAX_GROUP: usize = 64;

/// Who holds the write connection, and how many wait for it.
pub(super) struct Writer {
    engine: Engine,
    pool: AnyPool,
    slot: Arc<Mutex<Slot>>,
    waiting: AtomicUsize,
    /// Groups committed, and the transactions they carried.
    commits: AtomicUsize,
    committed: AtomicUsize,
}

/// How well commits are being grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// `COMMIT`s issued (each one fsync).
    pub commits: usize,
    /// Transactions those commits made durable.
    pub transactions: usize,
}

#[derive(Default)]
pub(super) struct Slot {
    conn: Option<PoolConnection<Any>>,
    group: Option<Group>,
    /// The holder's savepoint was opened (or may have been: a batch that failed).
    savepoint: bool,
    /// A member was dropped without committing: its savepoint is rolled back before the
    /// connection is used again.
    rollback_pending: bool,
    /// The ledger was closed: no more transactions.
    closed: bool,
}

/// The open outer transaction and the members that released their savepoints into it.
#[derive(Default)]
struct Group {
    members: Vec<oneshot::Sender<Result<(), String>>>,
    /// The chain head as the group's members left it.
    head: Option<(i64, String)>,
}

/// What follows a member's waiting writes on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// A statement that may write.
    Write,
    /// A statement that only reads, or the member's release.
    Read,
}

/// The write connection, held by one transaction at a time.
pub(super) struct Held {
    guard: OwnedMutexGuard<Slot>,
    writer: Arc<Writer>,
}

impl Deref for Held {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.guard
            .conn
            .as_ref()
            .expect("a held slot has its connection")
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.guard
            .conn
            .as_mut()
            .expect("a held slot has its connection")
    }
}

/// Counts a caller waiting for the connection while it waits; if it gives up (its future is
/// dropped) and nobody else waits, an open group must still be committed.
struct Waiting<'a>(&'a Arc<Writer>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.0.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.flush_later();
        }
    }
}

impl Writer {
    pub fn new(engine: Engine, pool: AnyPool) -> Arc<Self> {
        Arc::new(Self {
            engine,
            pool,
            slot: Arc::default(),
            waiting: AtomicUsize::new(0),
            commits: AtomicUsize::new(0),
            committed: AtomicUsize::new(0),
        })
    }

    pub fn stats(&self) -> GroupStats {
        GroupStats {
            commits: self.commits.load(Ordering::Relaxed),
            transactions: self.committed.load(Ordering::Relaxed),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Takes the write connection and opens the group's transaction when none is open (on
    /// SQLite this member's savepoint opens with its first writes). Returns the chain head as
    /// the group left it.
    pub async fn begin(self: &Arc<Self>) -> sqlx::Result<(Held, Option<(i64, String)>)> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self);
        let guard = self.slot.clone().lock_owned().await;
        let held = Held {
            guard,
            writer: self.clone(),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        std::mem::forget(waiting);
        // The statements below change the connection's state together; they run in a task of
        // their own, so a caller that gives up midway (a dropped request) cannot leave them
        // half done. sqlx runs a statement it was given to the end either way.
        let (held, opened) = tokio::spawn(async move {
            let mut held = held;
            let opened = held.open().await;
            (held, opened)
        })
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("opening a transaction failed: {e}")))?;
        opened.map(|head| (held, head))
    }

    /// Commits an open group nobody is left to commit (its last member was dropped, or the
    /// one it was handed to gave up waiting).
    fn flush_later(self: &Arc<Self>) {
        // Without a runtime (a process exiting) the open transaction simply never commits:
        // its members have not been answered, so nothing acknowledged is lost.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let writer = self.clone();
        runtime.spawn(async move {
            let guard = writer.slot.clone().lock_owned().await;
            let mut held = Held {
                guard,
                writer: writer.clone(),
            };
            if writer.waiting.load(Ordering::SeqCst) == 0 {
                held.finish().await;
            }
        });
    }

    /// Commits any open group and gives the connection back to the pool (at close); later
    /// transactions are refused.
    pub async fn close(self: &Arc<Self>) {
        let guard = self.slot.clone().lock_owned().await;
        let mut held = Held {
            guard,
            writer: self.clone(),
        };
        let _ = tokio::spawn(async move {
            held.finish().await;
            held.guard.conn = None;
            held.guard.closed = true;
        })
        .await;
    }
}

impl Held {
    /// Settles what a dropped member left and opens the group's transaction if none is open.
    /// Any failure ends the group as failed.
    async fn open(&mut self) -> sqlx::Result<Option<(i64, String)>> {
        if self.guard.closed {
            return Err(sqlx::Error::PoolClosed);
        }
        if self.guard.conn.is_none() {
            self.guard.conn = Some(self.writer.pool.acquire().await?);
        }
        let opened = async {
            self.settle().await?;
            let engine = self.writer.engine;
            let mut opening = vec![];
            if self.guard.group.is_none() {
                opening.push(engine.begin_group());
            }
            // PostgreSQL runs each write at once, so the member's savepoint opens now.
            let eager_savepoint = engine == Engine::Postgres;
            if eager_savepoint {
                opening.push("SAVEPOINT member".to_owned());
            }
            if !opening.is_empty() {
                (&mut **self).execute(opening.join("; ").as_str()).await?;
            }
            self.guard.group.get_or_insert_with(Group::default);
            self.guard.savepoint = eager_savepoint;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match opened {
            Ok(()) => Ok(self.guard.group.as_ref().and_then(|g| g.head.clone())),
            Err(error) => {
                self.fail_group(&error.to_string()).await;
                Err(error)
            }
        }
    }

    /// Settles what a dropped member left and ends the open group, if any.
    async fn finish(&mut self) {
        match self.settle().await {
            Ok(()) => self.end_group().await,
            Err(error) => self.fail_group(&error.to_string()).await,
        }
    }

    /// Rolls back a dropped member's savepoint, if one was left.
    async fn settle(&mut self) -> sqlx::Result<()> {
        if self.guard.rollback_pending && self.guard.group.is_some() {
            (&mut **self)
                .execute("ROLLBACK TO member; RELEASE member")
                .await?;
        }
        self.guard.rollback_pending = false;
        self.guard.savepoint = false;
        Ok(())
    }

    /// Something went wrong inside the group's transaction (SQLite may already have rolled
    /// it back): roll back whatever is left and tell every member it failed. Nothing of the
    /// group is committed.
    async fn fail_group(&mut self, why: &str) {
        let group = self.guard.group.take();
        self.guard.rollback_pending = false;
        self.guard.savepoint = false;
        let _ = sqlx::query("ROLLBACK").execute(&mut **self).await;
        // The connection itself may be what failed (a PostgreSQL server restarted): the next
        // transaction takes one the pool has checked.
        self.guard.conn = None;
        for member in group.map(|g| g.members).unwrap_or_default() {
            let _ = member.send(Err(why.to_owned()));
        }
    }

    /// Commits the open group (or rolls back one that no member joined) and tells its
    /// members how it went.
    async fn end_group(&mut self) {
        let Some(group) = self.guard.group.as_ref() else {
            return;
        };
        let finish = if group.members.is_empty() {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        let result = sqlx::query(finish)
            .execute(&mut **self)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Err(error) = &result {
            self.fail_group(error).await;
            return;
        }
        let group = self.guard.group.take().unwrap_or_default();
        if !group.members.is_empty() {
            self.writer.commits.fetch_add(1, Ordering::Relaxed);
            self.writer
                .committed
                .fetch_add(group.members.len(), Ordering::Relaxed);
        }
        for member in group.members {
            let _ = member.send(Ok(()));
        }
    }

    /// Sends the member's waiting writes, opening its savepoint with the first of them, or
    /// before a statement that may write (`next`), which must roll back with the member too.
    pub async fn run(&mut self, batch: &mut Batch, next: Next) -> sqlx::Result<()> {
        let opens = !self.guard.savepoint && (next == Next::Write || !batch.is_empty());
        if batch.is_empty() && !opens {
            return Ok(());
        }
        if opens {
            batch.prepend("SAVEPOINT member");
            // Set before sending: a batch that fails may have opened it.
            self.guard.savepoint = true;
        }
        batch.run(self).await
    }

    /// Sends the member's last writes with the release of its savepoint into the group, and
    /// waits until the group is durable. The member that finds nobody waiting behind it
    /// commits for the group. The release and the commit run in a task of their own: a caller
    /// that stops waiting changes nothing.
    pub async fn commit(self, head: Option<(i64, String)>, batch: Batch) -> sqlx::Result<()> {
        let (done, committed) = oneshot::channel();
        tokio::spawn(self.release(head, batch, done));
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(sqlx::Error::Protocol(format!(
                "the group commit failed: {error}"
            ))),
            Err(_) => Err(sqlx::Error::Protocol(
                "the group's transaction ended before it committed".into(),
            )),
        }
    }

    async fn release(
        mut self,
        head: Option<(i64, String)>,
        mut batch: Batch,
        done: oneshot::Sender<Result<(), String>>,
    ) {
        // A member that wrote nothing still waits for the group: what it read may be an
        // earlier member's writes, not durable until the group commits.
        if self.guard.savepoint || !batch.is_empty() {
            batch.append("RELEASE member");
            if let Err(error) = self.run(&mut batch, Next::Read).await {
                let _ = done.send(Err(error.to_string()));
                // Undo this member's writes alone; the group goes on without them. When the
                // savepoint is gone too (SQLite rolled the whole transaction back), the group
                // fails.
                self.guard.rollback_pending = true;
                if let Err(error) = self.settle().await {
                    self.fail_group(&error.to_string()).await;
                } else if self.writer.waiting.load(Ordering::SeqCst) == 0 {
                    self.end_group().await;
                }
                return;
            }
        }
        let Some(group) = self.guard.group.as_mut() else {
            let _ = done.send(Err("the group's transaction was gone".into()));
            return;
        };
        if head.is_some() {
            group.head = head;
        }
        group.members.push(done);
        let members = group.members.len();
        if self.writer.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_GROUP {
            self.end_group().await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let in_group = self.guard.group.is_some();
        if in_group && self.writer.waiting.load(Ordering::SeqCst) == 0 {
            // Nobody is behind us to commit the group: see that someone does.
            self.writer.flush_later();
        }
    }
}

/// A member dropped without committing: its savepoint, if it opened one, is rolled back next.
pub(super) fn abandon(held: &mut Held) {
    held.guard.rollback_pending = held.guard.savepoint;
}
