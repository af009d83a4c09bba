//! How Socket Mode's connections stand: what `/readyz` and `/metrics` show. Kept apart from
//! the listener so `AppState` can hold it without naming the listener.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How the connections stand, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct SocketHealth {
    /// Connections that said `hello` and are open now.
    open: AtomicUsize,
    /// Slack's refusal that no retry can fix, with what an operator should do.
    problem: Mutex<Option<String>>,
}

impl SocketHealth {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn problem(&self) -> Option<String> {
        self.problem.lock().expect("socket health lock").clone()
    }

    pub(super) fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().expect("socket health lock") = problem;
    }
}

impl SocketHealth {
    pub(super) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}
