//! Group commit on the single write connection. Transactions that queue behind one another
//! share one `BEGIN IMMEDIATE … COMMIT`: each runs inside its own `SAVEPOINT` (one that fails
//! or is dropped rolls back alone), and the last of a group — the one that finds nobody
//! waiting behind it — commits for all, with one fsync. Every member hears the commit's result
//! before its `commit()` returns, so nothing is acknowledged before it is durable.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

/// The most transactions one commit carries, so a steady stream still reaches the disk.
const MAX_GROUP: usize = 64;

/// Who holds the write connection, and how many wait for it.
pub(super) struct Writer {
    pool: SqlitePool,
    slot: Arc<Mutex<Slot>>,
    waiting: AtomicUsize,
    /// Groups committed, and the transactions they carried.
    commits: AtomicUsize,
    committed: AtomicUsize,
}

/// How well commits are being grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    /// `COMMIT`s issued (each one fsync).
    pub commits: usize,
    /// Transactions those commits made durable.
    pub transactions: usize,
}

#[derive(Default)]
pub(super) struct Slot {
    conn: Option<PoolConnection<Sqlite>>,
    group: Option<Group>,
    /// A member was dropped without committing: its savepoint is rolled back before the
    /// connection is used again.
    rollback_pending: bool,
}

/// The open outer transaction and the members that released their savepoints into it.
#[derive(Default)]
struct Group {
    members: Vec<oneshot::Sender<Result<(), String>>>,
    /// The chain head as the group's members left it.
    head: Option<(i64, String)>,
}

/// The write connection, held by one transaction at a time.
pub(super) struct Held {
    guard: OwnedMutexGuard<Slot>,
    writer: Arc<Writer>,
}

impl Deref for Held {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.guard
            .conn
            .as_ref()
            .expect("a held slot has its connection")
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
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
    pub fn new(pool: SqlitePool) -> Arc<Self> {
        Arc::new(Self {
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

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Takes the write connection and opens this member's savepoint (and the group's
    /// transaction, when none is open). Returns the chain head as the group left it.
    pub async fn begin(self: &Arc<Self>) -> sqlx::Result<(Held, Option<(i64, String)>)> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self);
        let guard = self.slot.clone().lock_owned().await;
        let mut held = Held {
            guard,
            writer: self.clone(),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        std::mem::forget(waiting);
        if held.guard.conn.is_none() {
            held.guard.conn = Some(self.pool.acquire().await?);
        }
        held.settle().await?;
        if held.guard.group.is_none() {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *held).await?;
            held.guard.group = Some(Group::default());
        }
        sqlx::query("SAVEPOINT member").execute(&mut *held).await?;
        let head = held.guard.group.as_ref().and_then(|g| g.head.clone());
        Ok((held, head))
    }

    /// Commits an open group nobody is left to commit (its last member was dropped, or the
    /// one it was handed to gave up waiting).
    fn flush_later(self: &Arc<Self>) {
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
            if held.settle().await.is_ok() && writer.waiting.load(Ordering::SeqCst) == 0 {
                held.end_group().await;
            }
        });
    }

    /// Gives the connection back to the pool (at close), committing any open group first.
    pub async fn close(self: &Arc<Self>) {
        let guard = self.slot.clone().lock_owned().await;
        let mut held = Held {
            guard,
            writer: self.clone(),
        };
        if held.settle().await.is_ok() {
            held.end_group().await;
        }
        held.guard.conn = None;
    }
}

impl Held {
    /// Rolls back a dropped member's savepoint, if one was left.
    async fn settle(&mut self) -> sqlx::Result<()> {
        if std::mem::take(&mut self.guard.rollback_pending) && self.guard.group.is_some() {
            sqlx::query("ROLLBACK TO member")
                .execute(&mut **self)
                .await?;
            sqlx::query("RELEASE member").execute(&mut **self).await?;
        }
        Ok(())
    }

    /// Commits the open group (or rolls back one that no member joined) and tells its
    /// members how it went.
    async fn end_group(&mut self) {
        let Some(group) = self.guard.group.take() else {
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
        if result.is_ok() && !group.members.is_empty() {
            self.writer.commits.fetch_add(1, Ordering::Relaxed);
            self.writer
                .committed
                .fetch_add(group.members.len(), Ordering::Relaxed);
        }
        for member in group.members {
            let _ = member.send(result.clone());
        }
    }

    /// Releases this member's savepoint into the group and waits until the group is durable.
    /// The member that finds nobody waiting behind it commits for the group.
    pub async fn commit(mut self, head: Option<(i64, String)>) -> sqlx::Result<()> {
        if let Err(error) = sqlx::query("RELEASE member").execute(&mut *self).await {
            // The savepoint is still open: roll it back rather than commit it with the group.
            self.guard.rollback_pending = true;
            return Err(error);
        }
        let (done, committed) = oneshot::channel();
        let members = {
            let group = self
                .guard
                .group
                .as_mut()
                .expect("a member runs inside a group");
            if head.is_some() {
                group.head = head;
            }
            group.members.push(done);
            group.members.len()
        };
        if self.writer.waiting.load(Ordering::SeqCst) == 0 || members >= MAX_GROUP {
            // In a task of its own: a caller that gives up waiting (a dropped request) must
            // not leave the group's commit half done for the others.
            tokio::spawn(async move { self.end_group().await });
        } else {
            drop(self);
        }
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

/// A member dropped without committing: its savepoint is rolled back next.
pub(super) fn abandon(held: &mut Held) {
    held.guard.rollback_pending = true;
}
