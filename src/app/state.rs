//! What every handler and worker shares.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::relying_party::Passkeys;
use super::{Concurrency, LaneHealth};
use crate::api::rate_limit::RateLimiter;
use crate::config::{SlackSettings, Timing};
use crate::domain::Policy;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::onepassword::events::AuditEvents;
use crate::onepassword::OnePassword;
use crate::slack::command_tasks::CommandTasks;
use crate::slack::socket::health::SocketHealth;
use crate::slack::{Directory, SlackWeb};

#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    pub policy: Arc<Policy>,
    pub onepassword: Arc<OnePassword>,
    pub slack: Arc<SlackWeb>,
    pub slack_settings: Arc<SlackSettings>,
    pub directory: Arc<Directory>,
    /// Signs callbacks; `None` when callbacks are not configured.
    pub callback_secret: Option<Arc<str>>,
    /// Delivers callbacks.
    pub http: reqwest::Client,
    /// Hosts a proposal's callback_url may name.
    pub callback_hosts: Arc<Vec<String>>,
    /// Rung after a commit, for what waits on any decision or outcome (the gateway's waits,
    /// Home tabs); each outbox lane has its own bell in the ledger.
    pub wake: Arc<Notify>,
    pub timing: Timing,
    pub metrics: Arc<Metrics>,
    pub rate_limiter: Arc<RateLimiter>,
    /// Slash commands acknowledged and still being worked on.
    pub commands: Arc<CommandTasks>,
    /// How many 1Password actions may run at once now.
    pub op_concurrency: Arc<Concurrency>,
    /// Which outbox lanes are running, for readiness.
    pub lanes: Arc<LaneHealth>,
    /// The passkey relying party; `None` when `PUBLIC_URL` is unset (no vote needs one).
    pub passkeys: Option<Arc<Passkeys>>,
    /// How Socket Mode's connections stand (none open when it is off).
    pub socket: Arc<SocketHealth>,
    /// 1Password's Events API, when a token for it is set.
    pub audit_events: Option<Arc<AuditEvents>>,
    /// Cancelled when shutdown begins, so requests that wait (the gateway's) answer at once.
    pub stopping: CancellationToken,
}

impl AppState {
    pub fn wake_worker(&self) {
        self.wake.notify_waiters();
    }
}
