#![allow(dead_code)]
//! `spawn_app()`: the real server on a random port, with its own SQLite file, a fake Slack
//! and a fake 1Password, plus a small client that speaks to it as automation and as Slack.

use std::time::Duration;

use countersign::config::{Settings, SlackSettings, Timing};
use countersign::domain::{AccountId, Policy, Status};
use countersign::ledger::Ledger;
use countersign::onepassword::events::EventsConfig;
use countersign::onepassword::OnePasswordConfig;
use countersign::startup::Application;
use serde_json::{json, Value};

use super::fake_onepassword::FakeOnePassword;
use super::fake_slack::{FakeSlack, PostedMessage};
use super::slack_signing::SIGNING_SECRET;

/// How many 25 ms polls a test waits for background work: 10 s, generous on a loaded CI
/// machine; a passing test returns as soon as the work is done.
const PATIENCE: usize = 400;

pub const CHANNEL: &str = "C0APPROVALS";
pub const AUDIT_CHANNEL: &str = "C0AUDIT";
pub const CALLBACK_SECRET: &str = "callback-secret-for-tests";
pub const TEAM: &str = "T0TEST";
/// Where approvers' browsers reach countersign in the tests: the passkeys' relying party.
pub const PUBLIC_URL: &str = "http://localhost:8080";

/// 1Password ids of the seeded users.
pub const ALICE: &str = "ALICEAAAAAAAAAAAAAAAAAAAAA";
pub const MALLORY: &str = "MALLORYAAAAAAAAAAAAAAAAAAA";

/// Slack users: Bob, Cat and Dan approve; Alice approves but is also a 1Password user;
/// Eve is not an approver; Nemo has no email on his profile.
pub const BOB: &str = "U0BOB";
pub const CAT: &str = "U0CAT";
pub const DAN: &str = "U0DAN";
pub const ALICE_SLACK: &str = "U0ALICE";
pub const EVE: &str = "U0EVE";
pub const NEMO: &str = "U0NEMO";
/// The on-call user group named in the policy; empty until a test adds members.
pub const ONCALL: &str = "S0ONCALL";

const POLICY: &str = r#"
[approvers]
users = ["U0BOB", "U0CAT", "U0DAN", "U0ALICE", "U0NEMO"]
groups = ["S0ONCALL"]
[suspend]
approvals = 1
ttl = "30m"
[restore]
approvals = 2
ttl = "24h"
# The suite's restores are decided by click; tests/passkeys.rs runs them on passkeys.
step_up = "none"
"#;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub slack: FakeSlack,
    pub op: FakeOnePassword,
    pub database_url: String,
    pub ledger: Ledger,
    /// Slack's requests reach it over Socket Mode, not HTTP.
    pub socket_mode: bool,
    /// Ends the server gracefully, as SIGTERM does `serve`.
    stop: std::sync::Mutex<Option<(tokio::sync::oneshot::Sender<()>, ServerTask)>>,
    _dir: tempfile::TempDir,
}

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// The approvers' policy above, with a short sweep so expiry shows within a test.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(POLICY, test_timing()).await
}

pub fn test_timing() -> Timing {
    Timing {
        sweep_every: Duration::from_millis(100),
        card_retry_cap: Duration::from_millis(200),
        card_overdue_after: Duration::from_millis(500),
        slack_post_every: Duration::from_millis(10),
        // Tests that watch for drift turn the sweep on themselves.
        drift_every: None,
        // Tests add 1Password users as they go: every unknown email lists again.
        op_miss_relist_every: Duration::ZERO,
        // A gateway write answers 503 soon; the test client retries as a SOAR does.
        gateway_wait: Duration::from_millis(500),
        gateway_poll: Duration::from_millis(20),
        socket_reconnect_cap: Duration::from_millis(200),
        socket_fatal_retry: Duration::from_millis(300),
        home_refresh_after: Duration::from_millis(20),
        home_publish_every: Duration::ZERO,
        // A card each, as most tests expect; tests/incident_cards.rs turns grouping on.
        incident_threshold: 0,
        ..Timing::default()
    }
}

/// The same approvers with other TTLs (for expiry and reminders).
pub fn policy_with_ttls(suspend: &str, restore: &str) -> String {
    POLICY
        .replace("ttl = \"30m\"", &format!("ttl = \"{suspend}\""))
        .replace("ttl = \"24h\"", &format!("ttl = \"{restore}\""))
}

/// The approvers' policy with top-level keys (like `protected`) before it and tables after.
pub fn policy_with(top_level: &str, tables: &str) -> String {
    format!("{top_level}\n{POLICY}\n{tables}")
}

pub async fn spawn_app_with(policy: &str, timing: Timing) -> TestApp {
    spawn_app_limited(policy, timing, 10_000).await
}

/// With each API token limited to `api_rate_limit` requests a minute.
pub async fn spawn_app_limited(policy: &str, timing: Timing, api_rate_limit: u32) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let op = FakeOnePassword::start().await;
    spawn_app_against(policy, timing, api_rate_limit, 8, op).await
}

/// Running up to `op_concurrency` 1Password actions at once.
pub async fn spawn_app_concurrent(op_concurrency: usize) -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_against(POLICY, test_timing(), 10_000, op_concurrency, op).await
}

/// The approvers' policy against this 1Password stand-in (say, one under another version).
pub async fn spawn_app_on(op: FakeOnePassword) -> TestApp {
    spawn_app_against(POLICY, test_timing(), 10_000, 8, op).await
}

/// On a SQLite file whatever engine this run is for (a ledger to copy elsewhere).
pub async fn spawn_app_on_sqlite() -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_in(
        POLICY,
        test_timing(),
        10_000,
        8,
        op,
        Store::Sqlite,
        Slack::Http(Some(TEAM)),
    )
    .await
}

/// Without `SLACK_TEAM_ID`: countersign learns its workspace from the bot token (`auth.test`).
pub async fn spawn_app_without_slack_team_id() -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_in(
        POLICY,
        test_timing(),
        10_000,
        8,
        op,
        Store::RunEngine,
        Slack::Http(None),
    )
    .await
}

/// With Socket Mode on: Slack's requests come over WebSockets countersign opens to the
/// stand-in (`FakeSlack::deliver`), and Slack's HTTP routes are off.
pub async fn spawn_app_in_socket_mode() -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_in(
        POLICY,
        test_timing(),
        10_000,
        8,
        op,
        Store::RunEngine,
        Slack::Socket,
    )
    .await
}

/// Whether this run's apps hear Slack over Socket Mode (`COUNTERSIGN_TEST_SLACK=socket`):
/// the Slack suites run once per transport, as the whole suite runs once per engine.
pub fn socket_mode_run() -> bool {
    std::env::var("COUNTERSIGN_TEST_SLACK").is_ok_and(|t| t == "socket")
}

/// Over Slack's HTTP routes in every run: for tests of the HTTP transport itself (signatures,
/// `url_verification`).
pub async fn spawn_app_over_http() -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_in(
        POLICY,
        test_timing(),
        10_000,
        8,
        op,
        Store::RunEngine,
        Slack::HttpAlways,
    )
    .await
}

/// An app that polls the stand-in's Events API every `timing.events_every`.
pub async fn spawn_app_with_events(policy: &str, timing: Timing) -> TestApp {
    let op = FakeOnePassword::start().await;
    spawn_app_in(
        policy,
        timing,
        10_000,
        8,
        op,
        Store::RunEngineWithEvents,
        Slack::Http(Some(TEAM)),
    )
    .await
}

/// An app polling the Events API with `token` (say, one without the audit events feature).
pub async fn spawn_app_with_events_token(policy: &str, timing: Timing, token: &str) -> TestApp {
    let app = spawn_app_with_events(policy, timing).await;
    app.restarted(policy, timing, Some(token)).await
}

impl TestApp {
    /// Stops this app and starts it again on the same ledger and stand-ins, as a restart of
    /// the process does, polling the Events API with `events_token` if given.
    pub async fn restarted(
        self,
        policy: &str,
        timing: Timing,
        events_token: Option<&str>,
    ) -> TestApp {
        self.shut_down().await;
        let app_token = self.socket_mode.then(|| FakeSlack::APP_TOKEN.to_owned());
        launch(Launch {
            policy,
            timing,
            api_rate_limit: 10_000,
            op_concurrency: 8,
            slack: self.slack,
            op: self.op,
            dir: self._dir,
            database_url: self.database_url,
            slack_team_id: Some(TEAM.to_owned()),
            app_token,
            events_token: events_token.map(str::to_owned),
        })
        .await
    }
}

/// How Slack reaches a test app.
#[derive(Clone, Copy)]
enum Slack<'a> {
    /// Signed HTTP requests, from this workspace (`None`: learnt from `auth.test`).
    Http(Option<&'a str>),
    /// Socket Mode, workspace `T0TEST`.
    Socket,
    /// Signed HTTP requests from `T0TEST` whatever the run's transport: tests of HTTP itself.
    HttpAlways,
}

/// Which database a test app gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// A fresh one on this run's engine.
    RunEngine,
    Sqlite,
    /// A fresh one on this run's engine, and 1Password's Events API polled (the stand-in's,
    /// with a token that reads audit events).
    RunEngineWithEvents,
}

async fn spawn_app_against(
    policy: &str,
    timing: Timing,
    api_rate_limit: u32,
    op_concurrency: usize,
    op: FakeOnePassword,
) -> TestApp {
    spawn_app_in(
        policy,
        timing,
        api_rate_limit,
        op_concurrency,
        op,
        Store::RunEngine,
        Slack::Http(Some(TEAM)),
    )
    .await
}

async fn spawn_app_in(
    policy: &str,
    timing: Timing,
    api_rate_limit: u32,
    op_concurrency: usize,
    op: FakeOnePassword,
    store: Store,
    slack_mode: Slack<'_>,
) -> TestApp {
    let slack_mode = match slack_mode {
        Slack::Http(Some(_)) if socket_mode_run() => Slack::Socket,
        other => other,
    };
    let (slack_team_id, app_token) = match slack_mode {
        Slack::Http(team) => (team, None),
        Slack::HttpAlways => (Some(TEAM), None),
        Slack::Socket => (Some(TEAM), Some(FakeSlack::APP_TOKEN.to_owned())),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let slack = FakeSlack::start().await;
    for (id, name, email) in [
        (BOB, "Bob", Some("bob@example.com")),
        (CAT, "Cat", Some("cat@example.com")),
        (DAN, "Dan", Some("dan@example.com")),
        (ALICE_SLACK, "Alice", Some("Alice@Example.com")),
        (EVE, "Eve", Some("eve@example.com")),
        (NEMO, "Nemo", None),
    ] {
        slack.add_user(id, name, email);
    }
    slack.add_usergroup(ONCALL, &[]);
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");
    op.add_user(MALLORY, "mallory@example.com", "Mallory", "SUSPENDED");

    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match store {
        Store::RunEngine | Store::RunEngineWithEvents => super::database::fresh(dir.path()).await,
        Store::Sqlite => format!("sqlite://{}", dir.path().join("countersign.db").display()),
    };
    let events_token =
        (store == Store::RunEngineWithEvents).then_some(FakeOnePassword::EVENTS_TOKEN);
    launch(Launch {
        policy,
        timing,
        api_rate_limit,
        op_concurrency,
        slack,
        op,
        dir,
        database_url,
        slack_team_id: slack_team_id.map(str::to_owned),
        app_token,
        events_token: events_token.map(str::to_owned),
    })
    .await
}

/// What a test app is started with, once its stand-ins and database exist.
struct Launch<'a> {
    policy: &'a str,
    timing: Timing,
    api_rate_limit: u32,
    op_concurrency: usize,
    slack: FakeSlack,
    op: FakeOnePassword,
    dir: tempfile::TempDir,
    database_url: String,
    slack_team_id: Option<String>,
    app_token: Option<String>,
    /// 1Password's Events API is polled with this token.
    events_token: Option<String>,
}

async fn launch(launch: Launch<'_>) -> TestApp {
    let Launch {
        policy,
        timing,
        api_rate_limit,
        op_concurrency,
        slack,
        op,
        dir,
        database_url,
        slack_team_id,
        app_token,
        events_token,
    } = launch;
    let socket_mode = app_token.is_some();
    let settings = Settings {
        database_url: database_url.clone(),
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        slack: SlackSettings {
            bot_token: FakeSlack::BOT_TOKEN.into(),
            signing_secret: SIGNING_SECRET.into(),
            channel: CHANNEL.into(),
            audit_channel: Some(AUDIT_CHANNEL.into()),
            team_id: slack_team_id,
            api_url: slack.api_url.clone(),
            app_token,
            socket_connections: 2,
        },
        onepassword: OnePasswordConfig {
            base_url: op.base_url.clone(),
            api_version: op.version.clone(),
            account: AccountId::parse(FakeOnePassword::ACCOUNT_ID).unwrap(),
            client_id: FakeOnePassword::CLIENT_ID.into(),
            client_secret: FakeOnePassword::CLIENT_SECRET.into(),
            timeout: Duration::from_secs(5),
        },
        policy: Policy::parse(policy).unwrap(),
        callback_allowed_hosts: vec!["soar.example.com".into(), "127.0.0.1".into()],
        callback_secret: Some(CALLBACK_SECRET.into()),
        public_url: Some(PUBLIC_URL.parse().unwrap()),
        api_rate_limit,
        op_concurrency,
        timing,
        events: events_token.map(|token| EventsConfig {
            base_url: op.base_url.clone(),
            token,
            timeout: Duration::from_secs(5),
        }),
    };
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let ledger = Ledger::connect(&database_url).await.unwrap();
    if socket_mode {
        for _ in 0..PATIENCE {
            if slack.open_connections() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    TestApp {
        address,
        http: reqwest::Client::new(),
        slack,
        op,
        database_url,
        ledger,
        socket_mode,
        stop: std::sync::Mutex::new(Some((stop, server))),
        _dir: dir,
    }
}

/// A valid suspension request for Alice.
pub fn suspend_alice() -> Value {
    json!({
        "action": "suspend",
        "user": {"email": "alice@example.com"},
        "reason": "Impossible travel followed by vault export",
        "source": {"platform": "crowdstrike", "alert_id": "ldt:8f2c", "alert_url": "https://falcon.example.com/ldt/8f2c",
                   "rule": "impossible-travel", "confidence": "high", "severity": "critical"}
    })
}

pub fn restore(user: &str) -> Value {
    json!({
        "action": "restore",
        "user": {"email": user},
        "reason": "Laptop recovered and credentials rotated",
        "source": {"platform": "tines"}
    })
}

impl TestApp {
    /// `/metrics` as Prometheus would scrape it.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// `/readyz`'s body, whatever its status.
    pub async fn readiness(&self) -> Value {
        self.http
            .get(format!("{}/readyz", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Shuts the server down the way SIGTERM does, and waits until it has stopped.
    pub async fn shut_down(&self) {
        let Some((stop, server)) = self.stop.lock().unwrap().take() else {
            return;
        };
        let _ = stop.send(());
        server
            .await
            .expect("the server task")
            .expect("the server stops cleanly");
    }

    /// The proposal as the ledger holds it now.
    pub async fn proposal(&self, id: &str) -> countersign::domain::Proposal {
        let id = countersign::domain::ProposalId::parse(id).unwrap();
        self.ledger
            .proposal(id)
            .await
            .unwrap()
            .expect("proposal exists")
    }

    pub async fn status(&self, proposal: &str) -> Status {
        self.proposal(proposal).await.status
    }

    /// Waits until a condition holds (the worker runs in the background).
    pub async fn eventually<F: Fn() -> bool>(&self, what: &str, check: F) {
        for _ in 0..PATIENCE {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for {what}");
    }

    pub async fn wait_for_status(&self, proposal: &str, status: Status) {
        for _ in 0..PATIENCE {
            if self.status(proposal).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "proposal {proposal} never reached {status}; it is {}",
            self.status(proposal).await
        );
    }

    /// Mallory restored and executed, the restore's approval then stamped 5 minutes ahead, as
    /// a replica whose clock runs fast would have stamped it. Returns that time.
    pub async fn restore_mallory_on_a_fast_clock(&self) -> chrono::DateTime<chrono::Utc> {
        let restore_id = self.propose_id(&restore("mallory@example.com")).await;
        self.click(BOB, "approve", &restore_id).await;
        self.click(CAT, "approve", &restore_id).await;
        self.wait_for_status(&restore_id, Status::Executed).await;
        let ahead = chrono::Utc::now() + chrono::Duration::minutes(5);
        let pool = super::database::pool(&self.database_url).await;
        sqlx::query("UPDATE proposals SET approved_at = $1 WHERE id = $2")
            .bind(countersign::ledger::timestamp(ahead))
            .bind(&restore_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        ahead
    }

    /// The `ts` of the proposal's card, once posted.
    pub async fn card_ts(&self, proposal: &str) -> String {
        let id = countersign::domain::ProposalId::parse(proposal).unwrap();
        for _ in 0..PATIENCE {
            if let Some(slack) = self
                .ledger
                .proposal(id)
                .await
                .unwrap()
                .and_then(|p| p.slack)
            {
                return slack.ts;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the card of {proposal} was never posted");
    }

    /// The card as Slack shows it now.
    pub async fn card(&self, proposal: &str) -> PostedMessage {
        let ts = self.card_ts(proposal).await;
        self.slack
            .message(CHANNEL, &ts)
            .expect("card is in the fake Slack")
    }

    /// Waits until the card's blocks contain `text`, and returns them.
    pub async fn card_shows(&self, proposal: &str, text: &str) -> String {
        for _ in 0..PATIENCE {
            let blocks = self.card(proposal).await.blocks.to_string();
            if blocks.contains(text) {
                return blocks;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "card never showed {text:?}: {}",
            self.card(proposal).await.blocks
        );
    }

    /// Ledger event kinds, in order.
    pub async fn event_kinds(&self) -> Vec<String> {
        self.ledger
            .events(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    pub async fn event_count(&self) -> usize {
        self.ledger.events(0, 100_000).await.unwrap().len()
    }

    /// Ephemeral texts sent to `user`.
    pub fn ephemerals_to(&self, user: &str) -> Vec<String> {
        self.slack
            .ephemerals()
            .into_iter()
            .filter(|c| c.params["user"] == user)
            .map(|c| c.params["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub async fn ephemeral_to(&self, user: &str) -> String {
        for _ in 0..PATIENCE {
            if let Some(text) = self.ephemerals_to(user).pop() {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no ephemeral reached {user}");
    }
}
