#![allow(dead_code)]
//! The real `countersign` binary as a child process, with the fakes it talks to: for tests of
//! what only a whole process shows (crashes, restarts, what it logs).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::fake_onepassword::FakeOnePassword;
use super::fake_slack::FakeSlack;
use super::slack_signing::{self, SIGNING_SECRET};

pub const ALICE: &str = "ALICEAAAAAAAAAAAAAAAAAAAAA";
pub const BOB: &str = "U0BOB";
pub const CHANNEL: &str = "C0APPROVALS";
pub const TEAM: &str = "T0TEST";
const POLICY: &str = "[approvers]\nusers = [\"U0BOB\"]\n";

/// The fakes, the database and the policy one test's processes share.
pub struct World {
    pub slack: FakeSlack,
    pub op: FakeOnePassword,
    pub http: reqwest::Client,
    pub database_url: String,
    pub policy: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A running `countersign serve`; killed when dropped, printing its logs if the test failed.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub http: reqwest::Client,
    pub name: String,
    pub logs: PathBuf,
}

impl World {
    /// On a fresh database of this run's engine.
    pub async fn start() -> Self {
        Self::start_at(None).await
    }

    /// On the database at `database_url` (say, one PostgreSQL database two replicas share).
    pub async fn start_on(database_url: String) -> Self {
        Self::start_at(Some(database_url)).await
    }

    async fn start_at(database_url: Option<String>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let slack = FakeSlack::start().await;
        slack.add_user(BOB, "Bob", Some("bob@example.com"));
        let op = FakeOnePassword::start().await;
        op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, POLICY).expect("write the policy");
        let database_url = match database_url {
            Some(url) => url,
            None => super::database::fresh(dir.path()).await,
        };
        Self {
            slack,
            op,
            http: reqwest::Client::new(),
            database_url,
            policy,
            dir,
        }
    }

    /// The binary with the settings every command of this test shares.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_countersign"));
        command
            .env("DATABASE_URL", &self.database_url)
            .env("SLACK_BOT_TOKEN", FakeSlack::BOT_TOKEN)
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_CHANNEL", CHANNEL)
            .env("SLACK_API_URL", &self.slack.api_url)
            .env("OP_CLIENT_ID", FakeOnePassword::CLIENT_ID)
            .env("OP_CLIENT_SECRET", FakeOnePassword::CLIENT_SECRET)
            .env("OP_ACCOUNT_ID", FakeOnePassword::ACCOUNT_ID)
            .env("OP_API_URL", &self.op.base_url)
            .env("COUNTERSIGN_POLICY", &self.policy)
            .env("PUBLIC_URL", "http://localhost:8080")
            .env("OUTBOX_LEASE_SECS", "2")
            .env("SLACK_POST_INTERVAL_MS", "10")
            .env("DRIFT_INTERVAL", "0")
            .env("GATEWAY_WAIT", "1s")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        command
    }

    /// Runs a one-shot command (`token create`, `ledger verify`) without blocking the fakes.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut command = tokio::process::Command::from(self.command());
        command.args(args).output().await.expect("the binary runs")
    }

    /// Starts `countersign serve` on a free port and waits until it answers /healthz.
    pub async fn serve(&self, name: &str) -> Server {
        self.serve_with(name, &[]).await
    }

    /// Like [`World::serve`], with more environment (e.g. `RUST_LOG`).
    pub async fn serve_with(&self, name: &str, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let logs = self.dir.path().join(name);
        let child = self
            .command()
            .arg("serve")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .stdout(log_file(&logs, "stdout"))
            .stderr(log_file(&logs, "stderr"))
            .envs(env.iter().copied())
            .spawn()
            .expect("the binary starts");
        let server = Server {
            child,
            address: format!("http://127.0.0.1:{port}"),
            http: self.http.clone(),
            name: name.to_owned(),
            logs,
        };
        server.wait_until_ready().await;
        server
    }

    /// A token that may propose suspensions (and read its own proposals), from the CLI.
    pub async fn create_token(&self) -> String {
        let output = self
            .run(&[
                "token",
                "create",
                "--name",
                "tines",
                "--scope",
                "propose:suspend",
            ])
            .await;
        assert!(output.status.success(), "token create failed: {output:?}");
        String::from_utf8(output.stdout)
            .expect("the secret is UTF-8")
            .trim()
            .to_owned()
    }

    /// A Users API gateway client with one permission, from the CLI: its id and secret.
    pub async fn create_gateway_client(&self, name: &str, permission: &str) -> (String, String) {
        let args = [
            "gateway",
            "client",
            "create",
            "--name",
            name,
            "--permission",
            permission,
        ];
        let output = self.run(&args).await;
        assert!(
            output.status.success(),
            "gateway client create failed: {output:?}"
        );
        let printed: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
        let field = |name: &str| printed[name].as_str().expect("a string").to_owned();
        (field("client_id"), field("client_secret"))
    }

    /// The ts of the (only) approval card, once the Slack worker has posted it.
    pub async fn card_ts(&self) -> String {
        eventually("the approval card", || {
            !self.slack.top_level_messages().is_empty()
        })
        .await;
        self.slack.top_level_messages()[0].ts.clone()
    }

    /// The ts of proposal `id`'s card, once a worker has posted it.
    pub async fn card_ts_of(&self, id: &str) -> String {
        let ledger = countersign::ledger::Ledger::connect(&self.database_url)
            .await
            .expect("open the ledger");
        let id = countersign::domain::ProposalId::parse(id).expect("a proposal id");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let proposal = ledger.proposal(id).await.expect("read the proposal");
            if let Some(slack) = proposal.and_then(|p| p.slack) {
                ledger.close().await;
                return slack.ts;
            }
            assert!(
                Instant::now() < deadline,
                "the card of {id} was never posted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bob clicks Approve on the card, as Slack sends it.
    pub async fn approve(&self, server: &Server, id: &str, card_ts: &str) {
        let payload = slack_signing::block_action(
            TEAM,
            BOB,
            "approve",
            id,
            CHANNEL,
            card_ts,
            &self.slack.response_url("x"),
        );
        let body = slack_signing::interaction_body(&payload);
        let response = self.signed_post(server, "/slack/interactions", body).await;
        assert_eq!(response.status(), 200, "Slack would see an error");
    }

    /// POSTs a form body to `path`, signed as Slack signs its requests.
    pub async fn signed_post(
        &self,
        server: &Server,
        path: &str,
        body: String,
    ) -> reqwest::Response {
        let now = slack_signing::now();
        self.http
            .post(format!("{}{path}", server.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", now.to_string())
            .header(
                "x-slack-signature",
                slack_signing::sign(SIGNING_SECRET, now, &body),
            )
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    pub async fn assert_ledger_verifies(&self) {
        let output = self.run(&["ledger", "verify"]).await;
        assert!(
            output.status.success(),
            "ledger verify failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Server {
    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = self
                .http
                .get(format!("{}/healthz", self.address))
                .send()
                .await;
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} never answered /healthz",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn propose_suspend_alice(&self, token: &str) -> String {
        self.propose_suspend(token, "alice@example.com").await
    }

    /// Proposes suspending the 1Password user with `email`; the new proposal's id.
    pub async fn propose_suspend(&self, token: &str, email: &str) -> String {
        let response = self
            .http
            .post(format!("{}/v1/proposals", self.address))
            .bearer_auth(token)
            .json(&json!({
                "action": "suspend",
                "user": {"email": email},
                "reason": "Impossible travel followed by vault export",
                "source": {"platform": "crowdstrike"}
            }))
            .send()
            .await
            .expect("propose");
        assert_eq!(response.status(), 201, "proposal not created");
        let proposal: Value = response.json().await.expect("a proposal");
        proposal["id"].as_str().expect("an id").to_owned()
    }

    /// Polls the proposal (a proposing token may read its own) until it has `status`.
    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let proposal: Value = self
                .http
                .get(format!("{}/v1/proposals/{id}", self.address))
                .bearer_auth(token)
                .send()
                .await
                .expect("read the proposal")
                .json()
                .await
                .expect("a proposal");
            if proposal["status"] == status {
                return proposal;
            }
            assert!(
                Instant::now() < deadline,
                "proposal never reached {status}: {proposal:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        ["stdout", "stderr"]
            .iter()
            .map(|stream| std::fs::read_to_string(log_path(&self.logs, stream)).unwrap_or_default())
            .collect()
    }

    /// SIGKILL: no shutdown handler, no last transaction.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            for stream in ["stdout", "stderr"] {
                let path = log_path(&self.logs, stream);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!("----- {} {stream} -----\n{text}", self.name);
            }
        }
    }
}

fn log_path(logs: &Path, stream: &str) -> PathBuf {
    logs.with_extension(format!("{stream}.log"))
}

fn log_file(logs: &Path, stream: &str) -> File {
    File::create(log_path(logs, stream)).expect("create a log file")
}

/// Waits up to 20 s for a condition on the fakes (the server works in the background).
pub async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
