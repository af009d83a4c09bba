//! `countersign sandbox`: the bot on a fresh SQLite file with local stand-ins for Slack and
//! 1Password, seeded users (`seeds.rs`), a default policy, and a page at `/sandbox`
//! (`page_api.rs`) that shows the approvals channel and sends Slack's requests to the bot
//! exactly as Slack would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

use super::onepassword::FakeOnePassword;
use super::page_api::{random_hex, routes, Sandbox};
use super::seeds::{seed_users, POLICY, SLACK_USERS};
use super::slack::FakeSlack;
use super::welcome;
use crate::app::relying_party::Passkeys;
use crate::config::{Settings, SlackSettings, Timing};
use crate::domain::{AccountId, Policy};
use crate::ledger::{GatewayPermission, Scope};
use crate::onepassword::events::EventsConfig;
use crate::onepassword::OnePasswordConfig;
use crate::startup::Application;

pub const CHANNEL: &str = "C0SANDBOX";
pub const TEAM: &str = "T0SANDBOX";

/// Starts everything and serves until `shutdown` resolves. `bind` must be a loopback address.
pub async fn run(
    bind: SocketAddr,
    socket_mode: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        bind.ip().is_loopback(),
        "the sandbox only listens on a loopback address, not {bind}"
    );
    let slack = FakeSlack::start_in(TEAM).await;
    for (id, name, email, _) in SLACK_USERS {
        slack.add_user(id, name, Some(email));
    }
    let op = FakeOnePassword::start().await;
    for user in seed_users() {
        op.add(user);
    }
    super::wave::seed_users(&op);
    let dir = sandbox_dir()?;
    let database_url = format!("sqlite://{}", dir.join("sandbox.db").display());
    let signing_secret = random_hex(16);
    // Browsers treat http://localhost as a secure context; an IP address is no relying party.
    let public_url: url::Url = format!("http://localhost:{}", bind.port()).parse()?;
    let settings = Settings {
        database_url: database_url.clone(),
        bind_addr: bind,
        slack: SlackSettings {
            bot_token: FakeSlack::BOT_TOKEN.into(),
            signing_secret: signing_secret.clone(),
            channel: CHANNEL.into(),
            audit_channel: None,
            team_id: Some(TEAM.into()),
            api_url: slack.api_url.clone(),
            app_token: socket_mode.then(|| FakeSlack::APP_TOKEN.to_owned()),
            socket_connections: 2,
        },
        onepassword: OnePasswordConfig {
            base_url: op.base_url.clone(),
            api_version: op.version.clone(),
            account: AccountId::parse(FakeOnePassword::ACCOUNT_ID).expect("a valid account id"),
            client_id: FakeOnePassword::CLIENT_ID.into(),
            client_secret: FakeOnePassword::CLIENT_SECRET.into(),
            timeout: Duration::from_secs(10),
        },
        policy: Policy::parse(POLICY).expect("the sandbox policy parses"),
        callback_allowed_hosts: vec![],
        callback_secret: None,
        public_url: Some(public_url.clone()),
        api_rate_limit: 600,
        op_concurrency: 8,
        timing: Timing {
            sweep_every: Duration::from_secs(2),
            // The stand-in does not limit posts; a newcomer should not wait on them.
            slack_post_every: Duration::from_millis(100),
            // Often, so a change made "in the console" shows as drift within seconds.
            drift_every: Some(Duration::from_secs(3)),
            // A console change is named (who, from where) within seconds.
            events_every: Duration::from_secs(2),
            ..Timing::default()
        },
        events: Some(EventsConfig {
            base_url: op.base_url.clone(),
            token: FakeOnePassword::EVENTS_TOKEN.into(),
            timeout: Duration::from_secs(10),
        }),
    };
    let app = Application::build(settings).await?;
    let port = app.port();
    let ledger = app.ledger().clone();
    let scopes = [
        Scope::ProposeSuspend,
        Scope::ProposeRestore,
        Scope::Read,
        Scope::AuditRead,
    ];
    let (_, token) = ledger.create_token("sandbox", &scopes, Utc::now()).await?;
    let (client, secret) = ledger
        .create_gateway_client("sandbox-soar", &GatewayPermission::ALL, Utc::now())
        .await?;
    let passkeys = Passkeys::new(&public_url).map_err(anyhow::Error::msg)?;

    let bot = format!("http://{}:{port}", bind.ip());
    let public = public_url.as_str().trim_end_matches('/');
    let gateway_example = welcome::gateway_example(public, &op.version, &client.id, &secret);
    welcome::print(public, &token, &gateway_example, &database_url);
    let sandbox = Arc::new(Sandbox {
        slack,
        op,
        http: reqwest::Client::new(),
        bot,
        signing_secret,
        token,
        socket_mode,
        gateway_example,
        ledger,
        passkeys,
        triggers: Mutex::default(),
        submitted: Mutex::default(),
        answers: Mutex::default(),
    });
    let served = app.with_routes(routes(sandbox)).run_until(shutdown).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(served?)
}

/// A fresh directory for this run's database, removed when the sandbox stops.
fn sandbox_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "countersign-sandbox-{}-{}",
        std::process::id(),
        random_hex(4)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
