//! (a) approve click → 1Password `:suspend` received, and (b) interaction answer latency
//! under a burst of concurrent clicks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use countersign::domain::Status;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::harness::{Click, Fixture, Server};
use crate::stats::Summary;

/// Rounds before measuring: the first pays for the 1Password OAuth token and the approver's
/// `users.info`, which a running server has long cached.
const WARM_UP: usize = 3;

pub struct ClickToSuspend {
    pub to_suspend: Summary,
    /// Slack's answer to the same clicks (it is sent before the worker acts).
    pub answer: Summary,
}

/// (a): sequential rounds on an otherwise idle server. Each round proposes, waits for the
/// card, clicks Approve, and times from sending the click to the moment the fake 1Password
/// received `POST …/users/{id}:suspend` (its own `received_at`, so polling adds nothing).
pub async fn click_to_suspend(
    fixture: &Fixture,
    server: &Server,
    rounds: usize,
) -> anyhow::Result<ClickToSuspend> {
    let token = server.token("bench-a").await?;
    let approver = fixture.approvers[0].clone();
    let (mut to_suspend, mut answer) = (vec![], vec![]);
    for round in 0..WARM_UP + rounds {
        let target = fixture.fresh_target()?;
        let (id, ts) = server.propose_with_card(&token, &target).await?;
        server.settle().await?;
        let click = Click::approve(fixture, &approver, id, &ts);
        let sent = Instant::now();
        let (status, answered) = click.send(&server.http, server.address()).await?;
        if status != 200 {
            bail!("click answered {status}");
        }
        let received = suspend_received(fixture, &target).await?;
        // The proposal must finish before the next round, or its card updates and
        // read-back would run during the next measurement.
        wait_executed(server, id).await?;
        if round >= WARM_UP {
            to_suspend.push(received.saturating_duration_since(sent));
            answer.push(answered);
        }
    }
    Ok(ClickToSuspend {
        to_suspend: Summary::of(&to_suspend),
        answer: Summary::of(&answer),
    })
}

async fn suspend_received(fixture: &Fixture, target: &str) -> anyhow::Result<Instant> {
    let path = format!("/users/{target}:suspend");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let found = fixture
            .op
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.method == "POST" && r.path.ends_with(&path));
        if let Some(request) = found {
            return Ok(request.received_at);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!("1Password never received the suspend of {target}")
}

async fn wait_executed(server: &Server, id: countersign::domain::ProposalId) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if server.status(id).await? == Status::Executed {
            return server.settle().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("proposal {id} was never executed")
}

pub struct Burst {
    pub answer: Summary,
    pub not_ok: usize,
    /// From the burst's start until 1Password had received every suspend.
    pub drained: Duration,
}

/// (b): `clicks` distinct approvers each approve a distinct pending proposal, all released
/// at once. Every click is a real approval (a write transaction, an execute job) — the
/// heaviest click there is. `approvers` decides whether the directory is cold (first click
/// of each: a `users.info` call) or warm (clicked within the 60 s cache).
pub async fn burst(
    fixture: &Fixture,
    server: &Server,
    approvers: &[String],
) -> anyhow::Result<Burst> {
    let cards = pending_cards(fixture, server, approvers.len()).await?;
    server.settle().await?;
    let suspends_before = fixture.op.mutation_count("suspend");

    let start = Arc::new(Barrier::new(approvers.len() + 1));
    let mut tasks = JoinSet::new();
    for (approver, (id, ts)) in approvers.iter().zip(cards) {
        let click = Click::approve(fixture, approver, id, &ts);
        let start = start.clone();
        let (http, address) = (server.http.clone(), server.address().to_owned());
        tasks.spawn(async move {
            start.wait().await;
            click.send(&http, &address).await
        });
    }
    start.wait().await;
    let began = Instant::now();
    let (mut answers, mut not_ok) = (vec![], 0);
    while let Some(joined) = tasks.join_next().await {
        let (status, took) = joined.context("a click task panicked")??;
        not_ok += usize::from(status != 200);
        answers.push(took);
    }
    let expected = suspends_before + approvers.len();
    while fixture.op.mutation_count("suspend") < expected {
        if began.elapsed() > Duration::from_secs(300) {
            bail!("the burst's suspends never all reached 1Password");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = began.elapsed();
    server.settle().await?;
    Ok(Burst {
        answer: Summary::of(&answers),
        not_ok,
        drained,
    })
}

/// `n` pending proposals with posted cards, proposed one after another.
async fn pending_cards(
    fixture: &Fixture,
    server: &Server,
    n: usize,
) -> anyhow::Result<Vec<(countersign::domain::ProposalId, String)>> {
    let token = server.token("bench-b").await?;
    let mut ids = vec![];
    for _ in 0..n {
        let target = fixture.fresh_target()?;
        let (status, id) = server.propose(&token, &target).await?;
        ids.push(id.with_context(|| format!("proposal not created: {status}"))?);
    }
    let mut cards = vec![];
    for id in ids {
        cards.push((id, server.card_ts(id).await?));
    }
    Ok(cards)
}

/// What (f) measured: from the last approve click answered to the last `:suspend` that
/// reached the stand-in.
pub struct ExecutionBurst {
    pub actions: usize,
    pub latency: Duration,
    pub took: Duration,
    pub not_ok: usize,
}

/// (f): `approvers.len()` approved suspensions against a 1Password that answers every call
/// after `latency`: how long from the last click until 1Password had every suspend.
pub async fn execution_burst(
    fixture: &Fixture,
    server: &Server,
    approvers: &[String],
    latency: Duration,
) -> anyhow::Result<ExecutionBurst> {
    let cards = pending_cards(fixture, server, approvers.len()).await?;
    server.settle().await?;
    let suspends_before = fixture.op.mutation_count("suspend");
    fixture.op.set_delay(latency);

    let mut tasks = JoinSet::new();
    for (approver, (id, ts)) in approvers.iter().zip(cards) {
        let click = Click::approve(fixture, approver, id, &ts);
        let (http, address) = (server.http.clone(), server.address().to_owned());
        tasks.spawn(async move { click.send(&http, &address).await });
    }
    let mut not_ok = 0;
    while let Some(joined) = tasks.join_next().await {
        let (status, _) = joined.context("a click task panicked")??;
        not_ok += usize::from(status != 200);
    }
    let last_click = Instant::now();
    let expected = suspends_before + approvers.len();
    while fixture.op.mutation_count("suspend") < expected {
        if last_click.elapsed() > Duration::from_secs(600) {
            fixture.op.set_delay(Duration::ZERO);
            bail!("the burst's suspends never all reached 1Password");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_suspend = fixture
        .op
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(":suspend"))
        .map(|r| r.received_at)
        .max()
        .unwrap_or_else(Instant::now);
    fixture.op.set_delay(Duration::ZERO);
    server.settle().await?;
    Ok(ExecutionBurst {
        actions: approvers.len(),
        latency,
        took: last_suspend.saturating_duration_since(last_click),
        not_ok,
    })
}
