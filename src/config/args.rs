//! The command line and environment `serve` reads its non-secret settings from (clap).

/// Settings that are not secret, as clap collected them from flags and the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,
    /// Slack channel id (C…) where approval cards are posted.
    #[arg(long, env = "SLACK_CHANNEL")]
    pub slack_channel: Option<String>,
    /// Channel id for hourly ledger checkpoints (optional).
    #[arg(long, env = "SLACK_AUDIT_CHANNEL")]
    pub slack_audit_channel: Option<String>,
    /// Refuse Slack requests from any other workspace.
    #[arg(long, env = "SLACK_TEAM_ID")]
    pub slack_team_id: Option<String>,
    /// Socket Mode connections this process keeps open (1 to 10; Slack allows ten per app,
    /// across all replicas).
    #[arg(long, env = "SLACK_SOCKET_CONNECTIONS", default_value_t = 2)]
    pub slack_socket_connections: usize,
    /// Slack Web API base URL.
    #[arg(long, env = "SLACK_API_URL", default_value = "https://slack.com/api")]
    pub slack_api_url: String,
    /// 1Password OAuth client id.
    #[arg(long, env = "OP_CLIENT_ID")]
    pub op_client_id: Option<String>,
    /// 1Password account id (26 characters).
    #[arg(long, env = "OP_ACCOUNT_ID")]
    pub op_account_id: Option<String>,
    /// 1Password Users API base URL (.com, .ca or .eu).
    #[arg(long, env = "OP_API_URL", default_value = "https://api.1password.com")]
    pub op_api_url: String,
    /// The Users API's version path segment; the API is a public preview and may move.
    #[arg(long, env = "OP_API_VERSION", default_value = "v1beta1")]
    pub op_api_version: String,
    /// The origin approvers' browsers use to reach countersign (passkey pages); its host is
    /// the WebAuthn relying-party id. Required when the policy asks for a passkey.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Hosts a proposal's callback_url may name, comma-separated.
    #[arg(long, env = "CALLBACK_ALLOWED_HOSTS", value_delimiter = ',')]
    pub callback_allowed_hosts: Vec<String>,
    /// How long a worker holds an outbox job before another may take it over; renewed
    /// while the job runs, so it only bounds how soon a crashed worker's job resumes.
    #[arg(long, env = "OUTBOX_LEASE_SECS", default_value_t = 30, hide = true)]
    pub outbox_lease_secs: u64,
    /// How long Slack profiles and user-group membership are cached (at most 60 s).
    #[arg(long, env = "SLACK_CACHE_SECS", default_value_t = 60, hide = true)]
    pub slack_cache_secs: u64,
    /// How often overdue proposals are expired and reminders sent.
    #[arg(long, env = "SWEEP_INTERVAL_MS", default_value_t = 15_000, hide = true)]
    pub sweep_interval_ms: u64,
    /// How often a ledger checkpoint is written and posted to the audit channel.
    #[arg(
        long,
        env = "CHECKPOINT_INTERVAL_SECS",
        default_value_t = 3600,
        hide = true
    )]
    pub checkpoint_interval_secs: u64,
    /// The longest a Retry-After from 1Password or Slack may postpone a job, in seconds.
    #[arg(long, env = "RETRY_AFTER_CAP_SECS", default_value_t = 300)]
    pub retry_after_cap_secs: u64,
    /// The longest wait between tries to post a pending proposal's card, in ms (at most 60 s).
    #[arg(long, env = "CARD_RETRY_CAP_MS", default_value_t = 60_000, hide = true)]
    pub card_retry_cap_ms: u64,
    /// Seconds a pending proposal may wait for its card before /readyz reports it overdue.
    #[arg(long, env = "CARD_OVERDUE_SECS", default_value_t = 30, hide = true)]
    pub card_overdue_secs: u64,
    /// Seconds graceful shutdown waits for acknowledged slash commands to finish.
    #[arg(long, env = "COMMAND_DRAIN_SECS", default_value_t = 10, hide = true)]
    pub command_drain_secs: u64,
    /// How often the drift sweep lists every user ("10m"; "0" turns it off).
    #[arg(long, env = "DRIFT_INTERVAL", default_value = "10m")]
    pub drift_interval: String,
    /// The least time between two listings of 1Password's users made because an email was not
    /// found: unknown emails within it are answered from the last listing.
    #[arg(long, env = "OP_MISS_RELIST_SECS", default_value_t = 60)]
    pub op_miss_relist_secs: u64,
    /// How long a gateway `:suspend` or `:reactivate` waits for its proposal to end before
    /// answering 503 with Retry-After ("20s").
    #[arg(long, env = "GATEWAY_WAIT", default_value = "20s")]
    pub gateway_wait: String,
    /// How long after its proposal ended a repeated gateway call is answered with that ending
    /// ("10m").
    #[arg(long, env = "GATEWAY_REMEMBER", default_value = "10m")]
    pub gateway_remember: String,
    /// How many suspensions waiting for cards at once are posted as incident cards instead of
    /// a card each; 0 posts a card each always.
    #[arg(long, env = "INCIDENT_THRESHOLD", default_value_t = 4)]
    pub incident_threshold: usize,
    /// How long after its newest member joined an incident later suspensions still join it.
    #[arg(long, env = "INCIDENT_WINDOW", default_value = "2m")]
    pub incident_window: String,
    /// 1Password's Events API (audit events) base URL: events.1password.com, or the
    /// business, .ca or .eu host. Used only with OP_EVENTS_TOKEN (read from the environment).
    #[arg(
        long,
        env = "OP_EVENTS_URL",
        default_value = "https://events.1password.com"
    )]
    pub op_events_url: String,
    /// How often the Events API is polled for audit events ("60s").
    #[arg(long, env = "EVENTS_INTERVAL", default_value = "60s")]
    pub events_interval: String,
    /// Milliseconds between chat.postMessage calls per channel (Slack: one a second).
    #[arg(
        long,
        env = "SLACK_POST_INTERVAL_MS",
        default_value_t = 1000,
        hide = true
    )]
    pub slack_post_interval_ms: u64,
    /// Requests per minute each API token may make.
    #[arg(long, env = "API_RATE_LIMIT", default_value_t = 600)]
    pub api_rate_limit: u32,
    /// How many 1Password actions may run at once (never two for one user).
    #[arg(long, env = "OP_CONCURRENCY", default_value_t = 8)]
    pub op_concurrency: usize,
    /// Seconds a client may take to send a request's headers (and an idle connection may wait
    /// for its next request) before the connection is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send a request's body, counted from its headers (408).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// How many connections the HTTP server holds at once; more wait to be accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// How many replicas share the ledger (PostgreSQL): `API_RATE_LIMIT` and `OP_CONCURRENCY`
    /// are the deployment's, and each replica takes its share.
    #[arg(long, env = "REPLICAS", default_value_t = 1)]
    pub replicas: u32,
    /// Path of the approval policy (TOML).
    #[arg(long, env = "COUNTERSIGN_POLICY")]
    pub policy: Option<String>,
}
