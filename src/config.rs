//! Settings for `serve`: non-secret ones are flags with environment fallbacks (parsed by clap
//! in `cli`), secrets come from the environment only. Everything missing is reported at once.

use std::net::SocketAddr;
use std::time::Duration;

use crate::domain::{AccountId, Policy};
use crate::onepassword::OnePasswordConfig;

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

/// Slack's settings. `Debug` shows no secret.
#[derive(Clone)]
pub struct SlackSettings {
    pub bot_token: String,
    pub signing_secret: String,
    pub channel: String,
    pub audit_channel: Option<String>,
    pub team_id: Option<String>,
    pub api_url: String,
}

/// Everything `serve` runs with. `Debug` shows no secret.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind_addr: SocketAddr,
    pub slack: SlackSettings,
    pub onepassword: OnePasswordConfig,
    pub policy: Policy,
    pub callback_allowed_hosts: Vec<String>,
    pub callback_secret: Option<String>,
    /// Where approvers' browsers reach countersign; `None` when no vote needs a passkey.
    pub public_url: Option<url::Url>,
    pub api_rate_limit: u32,
    /// How many 1Password actions may run at once.
    pub op_concurrency: usize,
    pub timing: Timing,
}

impl std::fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSettings")
            .field("bot_token", &"[redacted]")
            .field("signing_secret", &"[redacted]")
            .field("channel", &self.channel)
            .field("audit_channel", &self.audit_channel)
            .field("team_id", &self.team_id)
            .field("api_url", &self.api_url)
            .finish()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redacted_url(&self.database_url))
            .field("bind_addr", &self.bind_addr)
            .field("slack", &self.slack)
            .field("onepassword", &self.onepassword)
            .field("callback_allowed_hosts", &self.callback_allowed_hosts)
            .field(
                "public_url",
                &self.public_url.as_ref().map(url::Url::as_str),
            )
            .field(
                "callback_secret",
                &self.callback_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("api_rate_limit", &self.api_rate_limit)
            .field("op_concurrency", &self.op_concurrency)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

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
        }
    }
}

/// Why `serve` cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing settings: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    #[error("{0}")]
    Invalid(String),
}

/// `PUBLIC_URL`: an origin (scheme, host, optional port; no path) that is a secure context for
/// WebAuthn: `https://`, or `http://localhost` for the sandbox and tests. An IP literal is not
/// a valid relying-party id.
fn parse_public_url(raw: Option<&str>) -> Result<Option<url::Url>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let invalid = |why: &str| ConfigError::Invalid(format!("PUBLIC_URL {raw:?} {why}"));
    let url = url::Url::parse(raw).map_err(|_| invalid("is not a URL"))?;
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.to_owned(),
        Some(_) => return Err(invalid("names an IP address: a passkey needs a host name (use http://localhost:<port> on this machine)")),
        None => return Err(invalid("names no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        _ => return Err(invalid("must be https:// (http:// only for localhost)")),
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(invalid("must be an origin, without a path"));
    }
    Ok(Some(url))
}

fn env_secret(name: &'static str, missing: &mut Vec<&'static str>) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => {
            missing.push(name);
            String::new()
        }
    }
}

fn required(value: &Option<String>, name: &'static str, missing: &mut Vec<&'static str>) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => {
            missing.push(name);
            String::new()
        }
    }
}

impl Settings {
    pub fn load(database_url: &str, args: &ServeArgs) -> Result<Self, ConfigError> {
        let mut missing = Vec::new();
        let bot_token = env_secret("SLACK_BOT_TOKEN", &mut missing);
        let signing_secret = env_secret("SLACK_SIGNING_SECRET", &mut missing);
        let channel = required(&args.slack_channel, "SLACK_CHANNEL", &mut missing);
        let client_id = required(&args.op_client_id, "OP_CLIENT_ID", &mut missing);
        let client_secret = env_secret("OP_CLIENT_SECRET", &mut missing);
        let account = required(&args.op_account_id, "OP_ACCOUNT_ID", &mut missing);
        let policy_path = required(&args.policy, "COUNTERSIGN_POLICY", &mut missing);
        // Callbacks are signed; allowing callback hosts without a secret would send them unsigned.
        let callback_secret = if args
            .callback_allowed_hosts
            .iter()
            .any(|h| !h.trim().is_empty())
        {
            Some(env_secret("CALLBACK_SIGNING_SECRET", &mut missing))
        } else {
            None
        };
        if !missing.is_empty() {
            return Err(ConfigError::Missing(missing));
        }

        let bind_addr = args.bind_addr.parse().map_err(|_| {
            ConfigError::Invalid(format!("BIND_ADDR {:?} is not host:port", args.bind_addr))
        })?;
        let account = AccountId::parse(&account)
            .map_err(|e| ConfigError::Invalid(format!("OP_ACCOUNT_ID: {e}")))?;
        let api_version = parse_api_version(&args.op_api_version)?;
        let policy = load_policy(&policy_path)?;
        if policy.approvers.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{policy_path}: no approvers: add [approvers] users or groups, or nobody could approve anything"
            )));
        }
        let public_url = parse_public_url(args.public_url.as_deref())?;
        if policy.needs_passkeys() && public_url.is_none() {
            return Err(ConfigError::Invalid(format!(
                "{policy_path} asks for a passkey (step_up = \"passkey\"; a restore's default) but PUBLIC_URL is unset: set it to the origin approvers' browsers use to reach countersign (e.g. https://countersign.example.com), or set step_up = \"none\" and accept what that gives up"
            )));
        }
        Ok(Self {
            database_url: database_url.to_owned(),
            bind_addr,
            slack: SlackSettings {
                bot_token,
                signing_secret,
                channel,
                audit_channel: args
                    .slack_audit_channel
                    .clone()
                    .filter(|c| !c.trim().is_empty()),
                team_id: args.slack_team_id.clone().filter(|t| !t.is_empty()),
                api_url: vendor_url("SLACK_API_URL", &args.slack_api_url)?,
            },
            onepassword: OnePasswordConfig {
                base_url: vendor_url("OP_API_URL", &args.op_api_url)?,
                api_version,
                account,
                client_id,
                client_secret,
                timeout: Duration::from_secs(20),
            },
            policy,
            callback_secret,
            public_url,
            api_rate_limit: share(args.api_rate_limit, args.replicas),
            op_concurrency: (share(args.op_concurrency as u32, args.replicas) as usize)
                .clamp(1, 64),
            timing: Timing {
                outbox_lease: Duration::from_secs(args.outbox_lease_secs.max(1)),
                // Membership is re-read at least every minute, as DESIGN §4 promises.
                directory_cache: Duration::from_secs(args.slack_cache_secs.min(60)),
                sweep_every: Duration::from_millis(args.sweep_interval_ms.max(50)),
                checkpoint_every: Duration::from_secs(args.checkpoint_interval_secs.max(1)),
                retry_after_cap: Duration::from_secs(args.retry_after_cap_secs.max(1)),
                card_retry_cap: Duration::from_millis(args.card_retry_cap_ms.clamp(10, 60_000)),
                card_overdue_after: Duration::from_secs(args.card_overdue_secs),
                command_drain: Duration::from_secs(args.command_drain_secs),
                slack_post_every: Duration::from_millis(args.slack_post_interval_ms),
                drift_every: parse_interval("DRIFT_INTERVAL", &args.drift_interval)?,
                op_miss_relist_every: Duration::from_secs(args.op_miss_relist_secs),
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
                body_read_timeout: Duration::from_secs(args.body_read_timeout_secs.max(1)),
                max_connections: args.max_connections.max(1),
            },
            callback_allowed_hosts: args
                .callback_allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        })
    }
}

/// An interval such as "10m" or "30s"; "0" means off.
fn parse_interval(name: &str, raw: &str) -> Result<Option<Duration>, ConfigError> {
    if raw.trim() == "0" {
        return Ok(None);
    }
    crate::domain::parse_duration(raw)
        .ok()
        .and_then(|d| d.to_std().ok())
        .map(Some)
        .ok_or_else(|| {
            ConfigError::Invalid(format!(
                "{name} {raw:?} is not an interval like \"10m\" or 0"
            ))
        })
}

/// A version segment such as `v1beta1` or `v1`: one path segment, nothing that could
/// change which host or path is called.
fn parse_api_version(raw: &str) -> Result<String, ConfigError> {
    let version = raw.trim();
    let valid = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(ConfigError::Invalid(format!(
            "OP_API_VERSION {raw:?} must be one path segment such as v1beta1 or v1"
        )));
    }
    Ok(version.to_owned())
}

/// `url` with any password in it shown as `[redacted]`, for messages, logs and `Debug`: the
/// user part's (`postgres://user:secret@host/db` shows as `postgres://user:[redacted]@host/db`)
/// and any `password=` parameter's, in a URL's query or a `key=value` connection string.
/// Everything up to the last `@` counts as the user part, so a password holding a character a
/// URL forbids is hidden too (with more than it, at worst).
pub fn redacted_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (scheme, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
    let mut shown = String::from(scheme);
    let mut tail = rest;
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            shown.push_str(&rest[..=colon]);
            shown.push_str(REDACTED);
            tail = &rest[at..];
        }
    }
    // `password=…`, `sslpassword=…`: the value runs to the next parameter or word.
    while let Some(at) = tail.to_ascii_lowercase().find("password=") {
        let value = at + "password=".len();
        let end = tail[value..]
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .map_or(tail.len(), |n| value + n);
        shown.push_str(&tail[..value]);
        shown.push_str(REDACTED);
        tail = &tail[end..];
    }
    shown.push_str(tail);
    shown
}

/// A Slack or 1Password base URL, the setting `name`'s: `https://` anywhere; `http://` only on
/// a loopback host (127.0.0.0/8, `::1`, `localhost`), where the sandbox's and the tests'
/// stand-ins live, since a token or a secret would otherwise cross the network in clear.
fn vendor_url(name: &str, raw: &str) -> Result<String, ConfigError> {
    let refused = |why: &str| {
        ConfigError::Invalid(format!(
            "{name} {:?} {why}: use https:// (http:// only on a loopback host: 127.0.0.0/8, ::1 or localhost)",
            redacted_url(raw)
        ))
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| refused("is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        "http" => Err(refused("is plain http:// to a host off this machine")),
        _ => Err(refused("is neither https:// nor http://")),
    }
}

pub fn load_policy(path: &str) -> Result<Policy, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Invalid(format!("cannot read policy {path}: {e}")))?;
    Policy::parse(&text).map_err(|e| ConfigError::Invalid(format!("{path}: {e}")))
}

/// One replica's share of a deployment-wide limit: rounded up, never zero, so the replicas
/// together allow at least the limit and each allows something.
fn share(limit: u32, replicas: u32) -> u32 {
    limit.div_ceil(replicas.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            database_url: "sqlite://countersign.db".into(),
            bind_addr: "127.0.0.1:8080".parse().unwrap(),
            slack: SlackSettings {
                bot_token: "xoxb-secret-bot-token".into(),
                signing_secret: "slack-signing-secret".into(),
                channel: "C01".into(),
                audit_channel: None,
                team_id: None,
                api_url: "https://slack.com/api".into(),
            },
            onepassword: OnePasswordConfig {
                base_url: "https://api.1password.com".into(),
                api_version: "v1beta1".into(),
                account: AccountId::parse("A1B2C3D4E5F6G7H8J9K0L1M2N3").unwrap(),
                client_id: "client".into(),
                client_secret: "op-client-secret".into(),
                timeout: Duration::from_secs(20),
            },
            policy: Policy::parse("[approvers]\nusers = [\"U0BOB\"]\n").unwrap(),
            callback_allowed_hosts: vec![],
            callback_secret: Some("callback-signing-secret".into()),
            public_url: None,
            api_rate_limit: 600,
            op_concurrency: 8,
            timing: Timing::default(),
        }
    }

    #[test]
    fn settings_never_show_a_secret_in_debug() {
        let shown = format!("{:?}", settings());
        for secret in [
            "xoxb-secret-bot-token",
            "slack-signing-secret",
            "op-client-secret",
            "callback-signing-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("C01"), "non-secret settings still show");
    }

    #[test]
    fn settings_never_show_a_database_password_in_debug() {
        let settings = Settings {
            database_url: "postgres://countersign:db-password-1@db.internal:5432/countersign"
                .into(),
            ..settings()
        };

        let shown = format!("{settings:?}");

        assert!(!shown.contains("db-password-1"), "{shown}");
        assert!(
            shown.contains("postgres://countersign:[redacted]@db.internal:5432/countersign"),
            "{shown}"
        );
    }

    #[test]
    fn a_database_url_shows_without_its_password() {
        for (url, shown) in [
            (
                "postgres://user:secret@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            (
                "postgresql://user:p%40ss:w0rd@host:5432/db?sslmode=require",
                "postgresql://user:[redacted]@host:5432/db?sslmode=require",
            ),
            // Not a valid URL, and a password still
            (
                "postgres://user:pa/ss@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            (
                "postgres://user@host/db?sslmode=require&password=secret",
                "postgres://user@host/db?sslmode=require&password=[redacted]",
            ),
            (
                "host=db user=countersign password=secret dbname=countersign",
                "host=db user=countersign password=[redacted] dbname=countersign",
            ),
            ("postgres://user@host/db", "postgres://user@host/db"),
            ("postgres://host/db", "postgres://host/db"),
            ("sqlite://countersign.db", "sqlite://countersign.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    #[test]
    fn plain_http_is_allowed_only_on_a_loopback_host() {
        for url in [
            "http://127.0.0.1:8081",
            "http://127.0.0.5/api",
            "http://[::1]:9000",
            "http://localhost:3000/api",
            "http://LOCALHOST",
        ] {
            assert!(vendor_url("OP_API_URL", url).is_ok(), "{url} was refused");
        }
        for url in [
            "http://10.0.0.1",
            "http://example.com",
            "http://localhost.example.com",
            "http://[::2]",
            "http://0.0.0.0:8080",
        ] {
            let refused = vendor_url("OP_API_URL", url).expect_err(url).to_string();
            assert!(refused.contains("OP_API_URL"), "{refused}");
            assert!(refused.contains("https://"), "{refused}");
        }
    }

    #[test]
    fn an_api_url_is_https_anywhere_and_nothing_else() {
        for url in [
            "https://api.1password.eu",
            "https://10.0.0.1/api",
            "https://localhost",
        ] {
            assert!(
                vendor_url("SLACK_API_URL", url).is_ok(),
                "{url} was refused"
            );
        }
        for url in [
            "ftp://127.0.0.1/api",
            "ws://localhost",
            "api.1password.com",
            "",
        ] {
            let refused = vendor_url("SLACK_API_URL", url).expect_err(url).to_string();
            assert!(refused.contains("SLACK_API_URL"), "{refused}");
        }
    }

    #[test]
    fn each_replica_takes_its_share_of_a_deployment_limit() {
        assert_eq!(share(600, 1), 600);
        assert_eq!(share(600, 2), 300);
        assert_eq!(share(8, 3), 3);
        assert_eq!(share(1, 4), 1);
        assert_eq!(share(600, 0), 600);
    }

    #[test]
    fn an_api_version_is_one_path_segment() {
        assert_eq!(parse_api_version(" v1 ").unwrap(), "v1");
        for bad in ["", "v1/../admin", "v1?x", "https://evil.example"] {
            assert!(parse_api_version(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
