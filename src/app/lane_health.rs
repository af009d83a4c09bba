//! Whether each outbox lane is running, for `/readyz`: a lane that stopped must not hide
//! behind a 200.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::ledger::Lane;

#[derive(Debug, Default)]
pub struct LaneHealth {
    onepassword: AtomicBool,
    slack: AtomicBool,
    callback: AtomicBool,
    /// Jobs that panicked (each was rescheduled).
    panics: AtomicU64,
}

impl LaneHealth {
    fn flag(&self, lane: Lane) -> &AtomicBool {
        match lane {
            Lane::OnePassword => &self.onepassword,
            Lane::Slack => &self.slack,
            Lane::Callback => &self.callback,
        }
    }

    pub fn set_running(&self, lane: Lane, running: bool) {
        self.flag(lane).store(running, Ordering::SeqCst);
    }

    pub fn job_panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The lanes that are not running now.
    pub fn stopped(&self) -> Vec<&'static str> {
        Lane::ALL
            .into_iter()
            .filter(|lane| !self.flag(*lane).load(Ordering::SeqCst))
            .map(Lane::as_str)
            .collect()
    }

    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }
}
