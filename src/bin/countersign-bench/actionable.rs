//! (g) time to actionable: a wave of suspensions submitted as fast as the API takes them,
//! against a Slack stand-in that enforces one post a second per channel (bursts of three, as
//! Slack allows short bursts), timed until every proposal has a button a responder can press;
//! then the clicks that approve them all.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use countersign::domain::{ProposalId, Status};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::harness::{Click, Fixture, Server, CHANNEL};

/// Slack's posting limit as the stand-in enforces it.
pub const POST_EVERY: Duration = Duration::from_secs(1);
pub const POST_BURST: usize = 3;

pub struct Actionable {
    pub proposals: usize,
    pub submitted_in: Duration,
    pub actionable_in: Duration,
    /// Top-level messages posted for the wave.
    pub cards: usize,
    /// Button clicks that approved the whole wave, and presses counting confirm dialogs.
    pub clicks: usize,
    pub presses: usize,
    /// From the first click until 1Password had suspended every user.
    pub approved_in: Duration,
    pub posts_refused: usize,
}

/// What a responder can press now, by proposal: from the channel's messages, the ids with
/// an Approve (a card's button, or an incident row's menu).
fn pressable(fixture: &Fixture) -> HashSet<String> {
    fn walk(value: &Value, found: &mut HashSet<String>) {
        match value {
            Value::Object(map) => {
                let action = map.get("action_id").and_then(Value::as_str);
                if let (Some("approve"), Some(id)) =
                    (action, map.get("value").and_then(Value::as_str))
                {
                    found.insert(id.to_owned());
                }
                if let Some(id) = map
                    .get("value")
                    .and_then(Value::as_str)
                    .and_then(|v| v.strip_prefix("approve:"))
                {
                    found.insert(id.to_owned());
                }
                map.values().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = HashSet::new();
    for message in fixture.slack.top_level_messages() {
        if message.channel == CHANNEL {
            walk(&message.blocks, &mut found);
        }
    }
    found
}

/// The clicks that approve every pending proposal shown: per incident, "Approve all" on its
/// card covering the most rows; per card of its own, Approve. (click, has a confirm dialog).
fn approving_clicks(
    fixture: &Fixture,
    approver: &str,
    wave: &HashSet<String>,
) -> Vec<(Click, bool)> {
    let mut incidents: BTreeMap<String, (u32, String)> = BTreeMap::new();
    let mut singles = vec![];
    for message in fixture.slack.top_level_messages() {
        if message.channel != CHANNEL {
            continue;
        }
        let text = message.blocks.to_string();
        let blocks: Vec<Value> = message.blocks.as_array().cloned().unwrap_or_default();
        for element in blocks
            .iter()
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        {
            let value = element["value"].as_str().unwrap_or_default();
            match element["action_id"].as_str() {
                Some("approve_all") => {
                    let Some((incident, seq)) = value.split_once(':') else {
                        continue;
                    };
                    let seq: u32 = seq.parse().unwrap_or(0);
                    let best = incidents
                        .entry(incident.to_owned())
                        .or_insert((0, String::new()));
                    if seq > best.0 {
                        *best = (seq, message.ts.clone());
                    }
                }
                Some("approve") if wave.contains(value) && !text.contains("approve:") => {
                    singles.push((value.to_owned(), message.ts.clone()));
                }
                _ => {}
            }
        }
    }
    let mut clicks: Vec<(Click, bool)> = incidents
        .into_iter()
        .map(|(incident, (seq, ts))| {
            (
                Click::new(
                    fixture,
                    approver,
                    "approve_all",
                    &format!("{incident}:{seq}"),
                    &ts,
                ),
                true,
            )
        })
        .collect();
    clicks.extend(
        singles
            .into_iter()
            .map(|(id, ts)| (Click::new(fixture, approver, "approve", &id, &ts), false)),
    );
    clicks
}

/// Messages in the approvals channel so far (earlier benchmarks posted some).
fn channel_messages(fixture: &Fixture) -> usize {
    fixture
        .slack
        .top_level_messages()
        .iter()
        .filter(|m| m.channel == CHANNEL)
        .count()
}

pub async fn time_to_actionable(
    fixture: &Arc<Fixture>,
    server: &Arc<Server>,
    proposals: usize,
    clients: usize,
) -> anyhow::Result<Actionable> {
    let token = server.token("bench-wave").await?;
    let posted_before = channel_messages(fixture);
    let targets: Vec<String> = (0..proposals)
        .map(|_| fixture.fresh_target())
        .collect::<anyhow::Result<_>>()?;
    let queue = Arc::new(Mutex::new(targets));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let (server, queue, token) = (server.clone(), queue.clone(), token.clone());
        tasks.spawn(async move {
            let mut ids = vec![];
            loop {
                let next = queue.lock().expect("queue").pop();
                let Some(target) = next else { break };
                let (status, id) = server.propose(&token, &target).await?;
                ids.push(id.with_context(|| format!("a proposal answered {status}"))?);
            }
            anyhow::Ok(ids)
        });
    }
    let mut ids: Vec<ProposalId> = vec![];
    while let Some(joined) = tasks.join_next().await {
        ids.extend(joined.context("a proposer panicked")??);
    }
    let submitted_in = started.elapsed();
    let wave: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let shown = pressable(fixture);
        if wave.iter().all(|id| shown.contains(id)) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {proposals} proposals were never actionable",
                wave.iter().filter(|id| !shown.contains(*id)).count()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let actionable_in = started.elapsed();
    let cards = channel_messages(fixture) - posted_before;

    let clicks = approving_clicks(fixture, &fixture.approvers[0], &wave);
    let presses = clicks
        .iter()
        .map(|(_, confirm)| if *confirm { 2 } else { 1 })
        .sum();
    let clicked = clicks.len();
    let first_click = Instant::now();
    for (click, _) in clicks {
        let (status, _) = click.send(&server.http, server.address()).await?;
        if status != 200 {
            bail!("a click answered {status}");
        }
    }
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(600);
        while server.status(*id).await? != Status::Executed {
            if Instant::now() > deadline {
                bail!("proposal {id} was never executed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Actionable {
        proposals,
        submitted_in,
        actionable_in,
        cards,
        clicks: clicked,
        presses,
        approved_in: first_click.elapsed(),
        posts_refused: fixture.slack.posts_refused(),
    })
}
