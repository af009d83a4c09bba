//! Settings for `serve`: non-secret ones are flags with environment fallbacks (parsed by clap
//! in `cli`), secrets come from the environment only. Everything missing is reported at once.

use std::net::SocketAddr;
use std::time::Duration;

use crate::domain::{AccountId, Policy};
use crate::onepassword::events::EventsConfig;
use crate::onepassword::OnePasswordConfig;

mod args;
mod timing;
mod urls;

pub use args::ServeArgs;
pub use timing::Timing;
pub use urls::redacted_url;
use urls::{parse_api_version, parse_public_url, vendor_url};

/// Slack's settings. `Debug` shows no secret.
#[derive(Clone)]
pub struct SlackSettings {
    pub bot_token: String,
    pub signing_secret: String,
    pub channel: String,
    pub audit_channel: Option<String>,
    pub team_id: Option<String>,
    pub api_url: String,
    /// The app-level token (`xapp-…`, scope `connections:write`) that turns Socket Mode on:
    /// Slack's requests arrive over WebSockets countersign opens, and Slack's HTTP routes
    /// answer 404.
    pub app_token: Option<String>,
    /// How many Socket Mode connections this process keeps open (Slack allows ten per app).
    pub socket_connections: usize,
}

impl SlackSettings {
    pub fn socket_mode(&self) -> bool {
        self.app_token.is_some()
    }
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
    /// 1Password's Events API, when `OP_EVENTS_TOKEN` is set: drift names who made it.
    pub events: Option<EventsConfig>,
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
            .field("app_token", &self.app_token.as_ref().map(|_| "[redacted]"))
            .field("socket_connections", &self.socket_connections)
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
            .field("events", &self.events)
            .finish_non_exhaustive()
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
        // Socket Mode: Slack's requests come over countersign's own WebSockets, unsigned.
        let app_token = std::env::var("SLACK_APP_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if app_token.as_ref().is_some_and(|t| !t.starts_with("xapp-")) {
            return Err(ConfigError::Invalid(
                "SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope".into(),
            ));
        }
        let signing_secret = match &app_token {
            Some(_) => std::env::var("SLACK_SIGNING_SECRET").unwrap_or_default(),
            None => env_secret("SLACK_SIGNING_SECRET", &mut missing),
        };
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
                app_token,
                socket_connections: args.slack_socket_connections.clamp(1, 10),
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
                // Slack's limit is the workspace's per channel: each replica posts at its share.
                slack_post_every: Duration::from_millis(args.slack_post_interval_ms)
                    * args.replicas.max(1),
                slack_post_burst: (Timing::default().slack_post_burst / args.replicas.max(1))
                    .max(1),
                drift_every: parse_interval("DRIFT_INTERVAL", &args.drift_interval)?,
                op_miss_relist_every: Duration::from_secs(args.op_miss_relist_secs),
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
                body_read_timeout: Duration::from_secs(args.body_read_timeout_secs.max(1)),
                max_connections: args.max_connections.max(1),
                gateway_wait: span("GATEWAY_WAIT", &args.gateway_wait)?,
                gateway_remember: span("GATEWAY_REMEMBER", &args.gateway_remember)?,
                gateway_poll: Timing::default().gateway_poll,
                incident_threshold: args.incident_threshold,
                events_every: span("EVENTS_INTERVAL", &args.events_interval)?
                    .max(std::time::Duration::from_secs(1)),
                incident_window: span("INCIDENT_WINDOW", &args.incident_window)?,
                ..Timing::default()
            },
            events: std::env::var("OP_EVENTS_TOKEN")
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .map(|token| {
                    Ok::<_, ConfigError>(EventsConfig {
                        base_url: vendor_url("OP_EVENTS_URL", &args.op_events_url)?,
                        token,
                        timeout: std::time::Duration::from_secs(30),
                    })
                })
                .transpose()?,
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

/// A span such as "20s" or "10m"; "0" is none at all.
fn span(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    Ok(parse_interval(name, raw)?.unwrap_or(Duration::ZERO))
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
                app_token: None,
                socket_connections: 2,
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
            events: Some(EventsConfig {
                base_url: "https://events.1password.com".into(),
                token: "op-events-token".into(),
                timeout: Duration::from_secs(30),
            }),
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
            "op-events-token",
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
    fn each_replica_takes_its_share_of_a_deployment_limit() {
        assert_eq!(share(600, 1), 600);
        assert_eq!(share(600, 2), 300);
        assert_eq!(share(8, 3), 3);
        assert_eq!(share(1, 4), 1);
        assert_eq!(share(600, 0), 600);
    }
}
