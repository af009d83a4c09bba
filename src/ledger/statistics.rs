//! PostgreSQL plans the outbox claim from the tables' statistics, which autovacuum refreshes
//! at most once a minute. An incident files hundreds of jobs in seconds, and planned with the
//! statistics of the table before it, the claim ran its two `NOT EXISTS` checks for every due
//! job: a two-replica burst took 49 s to drain instead of 5, and sped up at autovacuum's next
//! analyze (BENCHMARKS.md, 2026-12-06). So a replica that has filed many jobs since it last
//! looked analyzes the outbox and the proposals itself, at most every few seconds, off the
//! write path. SQLite's planner keeps no such statistics here; nothing is done there.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Executor};

/// Jobs filed since the last analyze that make the next one due: a burst, not a trickle.
const AFTER_JOBS: usize = 200;
/// However fast jobs are filed, an analyze at most this often.
const AT_MOST_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Statistics {
    /// Where to analyze; none on SQLite.
    pool: Option<AnyPool>,
    filed: AtomicUsize,
    running: AtomicBool,
    last: Mutex<Option<Instant>>,
}

impl Statistics {
    pub fn kept_on(pool: Option<AnyPool>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            filed: AtomicUsize::new(0),
            running: AtomicBool::new(false),
            last: Mutex::new(None),
        })
    }

    /// `jobs` were committed to the outbox; analyzes when enough have been since the last.
    pub fn filed(self: &Arc<Self>, jobs: usize) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        if self.filed.fetch_add(jobs, Ordering::Relaxed) + jobs < AFTER_JOBS {
            return;
        }
        let recently = self
            .last_analyzed()
            .is_some_and(|at| at.elapsed() < AT_MOST_EVERY);
        if recently || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        // Without a runtime (a process exiting) there is nothing to plan for.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.running.store(false, Ordering::Release);
            return;
        };
        self.filed.store(0, Ordering::Relaxed);
        let this = self.clone();
        runtime.spawn(async move {
            if let Err(error) = pool.execute("ANALYZE outbox, proposals").await {
                tracing::warn!(%error, "could not analyze the outbox after a burst");
            }
            *this.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            this.running.store(false, Ordering::Release);
        });
    }

    fn last_analyzed(&self) -> Option<Instant> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}
