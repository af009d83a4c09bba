//! The system under test: the stand-ins for Slack and 1Password (in this process), and
//! countersign's real `serve` in a child process (this binary re-executed as `countersign
//! serve`), so its RSS is its own and its logs, workers and HTTP stack are the production ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use countersign::domain::{ProposalId, Status};
use countersign::ledger::{Ledger, Scope};
use countersign::sandbox::onepassword::FakeOnePassword;
use countersign::sandbox::signing::{self, SIGNING_SECRET};
use countersign::sandbox::slack::FakeSlack;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{AnyPool, Connection, Executor};

pub const CHANNEL: &str = "C0BENCH";
pub const TEAM: &str = "T0BENCH";
/// The argument that makes this binary behave as `countersign` (see `main`).
pub const AS_COUNTERSIGN: &str = "as-countersign";

/// Slack approvers and 1Password users the benchmarks draw from. Every proposal gets its own
/// 1Password user so none folds into another (a fold-in skips the card and the insert).
pub struct Fixture {
    pub dir: PathBuf,
    pub slack: FakeSlack,
    pub op: FakeOnePassword,
    pub approvers: Vec<String>,
    targets: Vec<String>,
    next_target: std::sync::atomic::AtomicUsize,
}

impl Fixture {
    pub async fn start(dir: PathBuf, approvers: usize, targets: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let slack = FakeSlack::start_in(TEAM).await;
        let approvers: Vec<String> = (0..approvers).map(|i| format!("U0BENCH{i:05}")).collect();
        for (i, id) in approvers.iter().enumerate() {
            let email = format!("approver{i}@example.com");
            slack.add_user(id, &format!("Approver {i}"), Some(&email));
        }
        let op = FakeOnePassword::start().await;
        let targets: Vec<String> = (0..targets).map(|i| format!("BENCH{i:021}")).collect();
        for (i, id) in targets.iter().enumerate() {
            op.add_user(
                id,
                &format!("user{i}@example.com"),
                &format!("User {i}"),
                "ACTIVE",
            );
        }
        Ok(Self {
            dir,
            slack,
            op,
            approvers,
            targets,
            next_target: Default::default(),
        })
    }

    /// A 1Password user no earlier proposal named.
    pub fn fresh_target(&self) -> anyhow::Result<String> {
        let i = self
            .next_target
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.targets
            .get(i)
            .cloned()
            .context("the benchmark ran out of 1Password users; raise TARGETS")
    }

    fn write_policy(&self) -> anyhow::Result<PathBuf> {
        let users: Vec<String> = self.approvers.iter().map(|a| format!("{a:?}")).collect();
        let policy = format!(
            "[approvers]\nusers = [{}]\n[suspend]\napprovals = 1\nttl = \"30m\"\n\
             [restore]\napprovals = 2\nttl = \"24h\"\n",
            users.join(", ")
        );
        let path = self.dir.join("policy.toml");
        std::fs::write(&path, policy)?;
        Ok(path)
    }
}

/// Where the server's ledger lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A fresh SQLite file in the scratch directory.
    Sqlite,
    /// A fresh database created on this PostgreSQL server.
    Postgres(String),
}

impl Database {
    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    }

    /// The URL of a new, empty ledger.
    async fn fresh(&self, dir: &Path, suffix: &str) -> anyhow::Result<String> {
        match self {
            Database::Sqlite => Ok(format!(
                "sqlite://{}",
                dir.join(format!("countersign{suffix}.db")).display()
            )),
            Database::Postgres(server) => {
                let name = format!(
                    "cs_bench_{}{suffix}",
                    chrono::Utc::now().format("%Y%m%d%H%M%S")
                );
                let mut admin = sqlx::PgConnection::connect(server)
                    .await
                    .context("connect to the PostgreSQL server given with --database")?;
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await?;
                admin.close().await?;
                let mut url = url::Url::parse(server)?;
                url.set_path(&name);
                eprintln!("benchmark database: {name}");
                Ok(url.to_string())
            }
        }
    }
}

/// countersign `serve` running as child processes (one, or several replicas on one
/// PostgreSQL ledger) against the fixture's stand-ins.
pub struct Server {
    children: Vec<Child>,
    addresses: Vec<String>,
    /// Which replica the next request goes to: round robin, as a load balancer would.
    next: AtomicUsize,
    pub http: reqwest::Client,
    /// The server's own database, opened beside it (WAL lets readers share it).
    pub ledger: Ledger,
    /// A pool for the few counts the ledger API does not offer.
    pub db: AnyPool,
    pub database_url: String,
}

impl Server {
    pub async fn start(
        fixture: &Fixture,
        database: &Database,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        // (a)–(f) measure a card each: grouping a burst is (g)'s subject.
        Self::start_with(
            fixture,
            database,
            replicas,
            "",
            &[("INCIDENT_THRESHOLD", "0")],
        )
        .await
    }

    /// A server on a ledger of its own (`name` tells it apart), with `env` on top of the
    /// bench's settings.
    pub async fn start_with(
        fixture: &Fixture,
        database: &Database,
        replicas: usize,
        name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let policy = fixture.write_policy()?;
        let database_url = database.fresh(&fixture.dir, name).await?;
        let mut children = Vec::new();
        let mut addresses = Vec::new();
        let http = reqwest::Client::new();
        for replica in 0..replicas.max(1) {
            let (child, address) =
                spawn_serve(fixture, &policy, &database_url, (replica, replicas), env)?;
            children.push(child);
            addresses.push(address);
        }
        for address in &addresses {
            wait_healthy(&http, address).await?;
        }
        let ledger = Ledger::connect(&database_url).await?;
        sqlx::any::install_default_drivers();
        let db = AnyPool::connect(&database_url).await?;
        Ok(Self {
            children,
            addresses,
            next: AtomicUsize::new(0),
            http,
            ledger,
            db,
            database_url,
        })
    }

    /// The replica the next request goes to.
    pub fn address(&self) -> &str {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        &self.addresses[next % self.addresses.len()]
    }
}

fn spawn_serve(
    fixture: &Fixture,
    policy: &Path,
    database_url: &str,
    (replica, replicas): (usize, usize),
    env: &[(&str, &str)],
) -> anyhow::Result<(Child, String)> {
    let port = free_port()?;
    // A later server (g) appends to the same log.
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(fixture.dir.join(format!("serve-{replica}.log")))?;
    let child = Command::new(std::env::current_exe()?)
        .args([AS_COUNTERSIGN, "serve"])
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("SLACK_BOT_TOKEN", FakeSlack::BOT_TOKEN)
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        .env("SLACK_CHANNEL", CHANNEL)
        .env("SLACK_TEAM_ID", TEAM)
        .env("SLACK_API_URL", &fixture.slack.api_url)
        .env("OP_CLIENT_ID", FakeOnePassword::CLIENT_ID)
        .env("OP_CLIENT_SECRET", FakeOnePassword::CLIENT_SECRET)
        .env("OP_ACCOUNT_ID", FakeOnePassword::ACCOUNT_ID)
        .env("OP_API_URL", &fixture.op.base_url)
        .env("COUNTERSIGN_POLICY", policy)
        .env("PUBLIC_URL", "http://localhost:8080")
        // Each replica takes its share of OP_CONCURRENCY, so the deployment's stays 8.
        .env("REPLICAS", replicas.to_string())
        // The per-token limit (600/min by default) would cap (c) at 10/s per token; the
        // benchmark measures the server, not the limiter.
        .env("API_RATE_LIMIT", "100000000")
        // The Slack stand-in does not limit posts; pacing them at Slack's one a second
        // per channel would measure the pacer, not the server.
        .env("SLACK_POST_INTERVAL_MS", "0")
        // The drift sweep would list every seeded user; not what the bench measures.
        .env("DRIFT_INTERVAL", "0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start countersign serve")?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}

impl Server {
    /// The first replica's pid (the one whose memory is reported).
    pub fn pid(&self) -> u32 {
        self.children[0].id()
    }

    /// `(VmRSS, VmHWM)` of the server in MiB: resident now, and the peak so far.
    pub fn rss_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .context("no such /proc field")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    pub async fn token(&self, name: &str) -> anyhow::Result<String> {
        let scopes = [Scope::ProposeSuspend, Scope::Read];
        Ok(self
            .ledger
            .create_token(name, &scopes, chrono::Utc::now())
            .await?
            .1)
    }

    /// Proposes suspending the 1Password user `target` (named by id, so intake makes one
    /// `GET users/{id}` instead of paging the list); the proposal's id when it was created.
    pub async fn propose(
        &self,
        token: &str,
        target: &str,
    ) -> anyhow::Result<(StatusCode, Option<ProposalId>)> {
        let body = json!({
            "action": "suspend",
            "user": {"id": target},
            "reason": "Benchmark: impossible travel followed by vault export",
            "source": {"platform": "bench", "alert_id": format!("bench:{target}"), "confidence": "high"},
        });
        let response = self
            .http
            .post(format!("{}/v1/proposals", self.address()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if status != StatusCode::CREATED {
            return Ok((status, None));
        }
        let created: serde_json::Value = response.json().await?;
        let id = created["id"].as_str().context("a proposal has an id")?;
        Ok((
            status,
            Some(ProposalId::parse(id).map_err(anyhow::Error::msg)?),
        ))
    }

    /// Proposes and waits until the card is posted, so what follows starts from a settled
    /// proposal.
    pub async fn propose_with_card(
        &self,
        token: &str,
        target: &str,
    ) -> anyhow::Result<(ProposalId, String)> {
        let (status, id) = self.propose(token, target).await?;
        let id = id.with_context(|| format!("proposal not created: {status}"))?;
        let ts = self.card_ts(id).await?;
        Ok((id, ts))
    }

    pub async fn card_ts(&self, id: ProposalId) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(slack) = self.ledger.proposal(id).await?.and_then(|p| p.slack) {
                return Ok(slack.ts);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        bail!("the card of {id} was never posted")
    }

    pub async fn status(&self, id: ProposalId) -> anyhow::Result<Status> {
        Ok(self
            .ledger
            .proposal(id)
            .await?
            .context("proposal exists")?
            .status)
    }

    /// Waits until the outbox is empty: every card, reply and execution done.
    pub async fn settle(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            let depth: i64 = self.ledger.outbox_depth().await?.iter().map(|d| d.1).sum();
            if depth == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the outbox never drained")
    }

    pub async fn count_events(&self, kind: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM ledger_events WHERE kind = $1")
                .bind(kind)
                .fetch_one(&self.db)
                .await?,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A signed `approve` click, built ahead so signing is not timed.
pub struct Click {
    body: String,
    timestamp: i64,
    signature: String,
}

impl Click {
    pub fn approve(fixture: &Fixture, approver: &str, proposal: ProposalId, ts: &str) -> Self {
        Self::new(fixture, approver, "approve", &proposal.to_string(), ts)
    }

    /// A click on the button `action_id` whose value is `value`, on the message `ts`.
    pub fn new(fixture: &Fixture, approver: &str, action_id: &str, value: &str, ts: &str) -> Self {
        let payload = signing::block_action(
            TEAM,
            approver,
            action_id,
            value,
            CHANNEL,
            ts,
            &fixture.slack.response_url("bench"),
        );
        let body = signing::interaction_body(&payload);
        let timestamp = signing::now();
        let signature = signing::sign(SIGNING_SECRET, timestamp, &body);
        Self {
            body,
            timestamp,
            signature,
        }
    }

    /// Sends the click as Slack would and returns Slack's view: status and time to answer.
    pub async fn send(
        self,
        http: &reqwest::Client,
        address: &str,
    ) -> anyhow::Result<(StatusCode, Duration)> {
        let started = Instant::now();
        let response = http
            .post(format!("{address}/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", self.timestamp.to_string())
            .header("x-slack-signature", self.signature)
            .body(self.body)
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        Ok((status, started.elapsed()))
    }
}

fn free_port() -> anyhow::Result<u16> {
    // Bound and released at once; nothing else on this machine races for it in practice.
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_healthy(http: &reqwest::Client, address: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{address}/healthz")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("countersign serve did not become healthy; see serve.log")
}

/// A directory of its own under the system temp dir (same disk as the runs before it).
pub fn scratch_dir() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    std::env::temp_dir().join(format!("countersign-bench-{stamp}-{}", std::process::id()))
}

/// The filesystem the scratch directory is on, as `df` names it.
pub fn describe_disk(dir: &Path) -> String {
    Command::new("df")
        .args(["-h", "--output=source,fstype,size,target"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}
