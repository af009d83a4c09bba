//! How often and how long the background work and the HTTP server wait: production defaults,
//! set from the environment, shortened by the tests.

use std::time::Duration;

/// Intervals of the background work; defaults suit production, tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a claimed outbox job stays claimed without a renewal.
    pub outbox_lease: Duration,
    /// How long Slack profiles and group membership are trusted.
    pub directory_cache: Duration,
    /// How often the sweeper expires proposals and sends reminders.
    pub sweep_every: Duration,
    /// How often a ledger checkpoint is written.
    pub checkpoint_every: Duration,
    /// The longest any `Retry-After` (from 1Password, Slack or a callback receiver) may
    /// postpone a job.
    pub retry_after_cap: Duration,
    /// The longest wait between tries to post a pending proposal's card.
    pub card_retry_cap: Duration,
    /// How long a pending proposal may wait for its card before `/readyz` calls it overdue.
    pub card_overdue_after: Duration,
    /// How long shutdown waits for acknowledged slash commands to finish.
    pub command_drain: Duration,
    /// Slack's pace for chat.postMessage per channel.
    pub slack_post_every: Duration,
    /// How often the drift sweep runs; `None` when it is off.
    pub drift_every: Option<Duration>,
    /// How long the HTTP server waits for a request's headers, and for the next request on an
    /// idle connection, before closing the connection.
    pub header_read_timeout: Duration,
    /// How long the HTTP server waits for a request's whole body, counted from its headers,
    /// before answering 408.
    pub body_read_timeout: Duration,
    /// How many connections the HTTP server holds at once; more wait to be accepted.
    pub max_connections: usize,
    /// The least time between two listings of 1Password's users made because an email was
    /// not found (any listing, the drift sweep's included, starts it again).
    pub op_miss_relist_every: Duration,
    /// How long a gateway `:suspend` or `:reactivate` call waits for its proposal to end
    /// before answering 503 (`GATEWAY_WAIT`).
    pub gateway_wait: Duration,
    /// How long after its proposal ended the same gateway call is answered with that ending
    /// instead of proposing again (`GATEWAY_REMEMBER`).
    pub gateway_remember: Duration,
    /// How often a waiting gateway call reads its proposal when no commit woke it (another
    /// replica's commit on SQLite never does).
    pub gateway_poll: Duration,
    /// How many posts to one channel go at once before pacing starts (Slack allows short
    /// bursts; three, shared among replicas).
    pub slack_post_burst: u32,
    /// How many suspensions waiting for cards in one channel at once are posted as incident
    /// cards instead of a card each (`INCIDENT_THRESHOLD`; 0 never groups). Not a time, but
    /// it sets how soon a burst is in front of responders, as the others here do.
    pub incident_threshold: usize,
    /// How long after its newest member joined an incident still takes later proposals
    /// (`INCIDENT_WINDOW`).
    pub incident_window: Duration,
    /// How often 1Password's Events API is polled for audit events (`EVENTS_INTERVAL`).
    pub events_every: Duration,
    /// The longest pause between two tries to open a Socket Mode connection.
    pub socket_reconnect_cap: Duration,
    /// How long a slot waits after Slack refused Socket Mode outright (`invalid_auth`,
    /// `link_disabled`) before it asks again.
    pub socket_fatal_retry: Duration,
    /// How long the Home refresher gathers changes after a commit before it republishes.
    pub home_refresh_after: Duration,
    /// The least time between two `views.publish` calls of the refresher (Slack: Tier 4,
    /// 100+ a minute).
    pub home_publish_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            outbox_lease: Duration::from_secs(30),
            directory_cache: Duration::from_secs(60),
            sweep_every: Duration::from_secs(15),
            checkpoint_every: Duration::from_secs(3600),
            retry_after_cap: Duration::from_secs(300),
            card_retry_cap: Duration::from_secs(60),
            card_overdue_after: Duration::from_secs(30),
            command_drain: Duration::from_secs(10),
            slack_post_every: Duration::from_secs(1),
            drift_every: Some(Duration::from_secs(600)),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
            op_miss_relist_every: Duration::from_secs(60),
            gateway_wait: Duration::from_secs(20),
            gateway_remember: Duration::from_secs(600),
            gateway_poll: Duration::from_secs(1),
            slack_post_burst: 3,
            // More waiting than the posting limit's burst of three: the fourth would wait.
            incident_threshold: 4,
            incident_window: Duration::from_secs(120),
            events_every: Duration::from_secs(60),
            socket_reconnect_cap: Duration::from_secs(30),
            socket_fatal_retry: Duration::from_secs(300),
            home_refresh_after: Duration::from_secs(2),
            home_publish_every: Duration::from_millis(700),
        }
    }
}
