//! A signed Slack request is single use: the same body, timestamp and signature delivered a
//! second time within the signature's five minutes does nothing more. The seen signatures
//! live in the ledger, so replicas sharing a PostgreSQL ledger share them too.

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::domain::Status;
use countersign::ledger::ProposalQuery;
use serde_json::Value;
use support::app::*;
use support::slack_signing::{self, SIGNING_SECRET};

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

async fn all_proposals(app: &TestApp) -> Vec<countersign::domain::Proposal> {
    app.ledger
        .proposals(&ProposalQuery {
            limit: 100,
            ..ProposalQuery::default()
        })
        .await
        .unwrap()
}

/// Lets anything a request set off in the background finish.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

#[tokio::test]
async fn a_replayed_slash_command_does_nothing_the_second_time() {
    let app = spawn_app().await;
    let body = slack_signing::slash_command_body(
        TEAM,
        BOB,
        "/restore",
        "mallory@example.com Laptop recovered and credentials rotated",
        CHANNEL,
        &app.slack.response_url("r1"),
    );
    let now = slack_signing::now();
    let signature = slack_signing::sign(SIGNING_SECRET, now, &body);
    let first = app
        .post_signed("/slack/commands", &body, now, Some(&signature))
        .await;
    assert_eq!(first.status(), 200);
    app.later_answer("r1").await;
    settle().await;
    let events_before = app.event_count().await;

    let replay = app
        .post_signed("/slack/commands", &body, now, Some(&signature))
        .await;

    assert_eq!(replay.status(), 200, "Slack would show an error");
    let answer: Value = replay.json().await.unwrap();
    assert_eq!(answer["response_type"], "ephemeral");
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("already received"), "{text}");
    settle().await;
    assert_eq!(all_proposals(&app).await.len(), 1, "one proposal");
    let kinds = app.event_kinds().await;
    assert_eq!(count(&kinds, "proposal.created"), 1);
    assert_eq!(
        app.event_count().await,
        events_before,
        "nothing more recorded"
    );
    assert_eq!(app.slack.responses("r1").len(), 1, "answered once");
}

async fn drift_events(app: &TestApp) -> Vec<countersign::ledger::chain::StoredEvent> {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "drift.detected")
        .collect()
}

#[tokio::test]
async fn a_replayed_propose_again_click_proposes_once() {
    let sweeping = Timing {
        drift_every: Some(Duration::from_millis(100)),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with("", ""), sweeping).await;
    for _ in 0..400 {
        if app
            .event_kinds()
            .await
            .contains(&"drift.baseline".to_owned())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let suspension = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &suspension).await;
    app.wait_for_status(&suspension, Status::Executed).await;
    settle().await;
    // An owner reactivates Alice in the 1Password console; the drift alert offers the button.
    app.op.set_state(ALICE, "ACTIVE");
    app.eventually("the drift alert", || {
        app.slack
            .top_level_messages()
            .iter()
            .any(|m| m.blocks.to_string().contains("Propose suspension again"))
    })
    .await;
    let alert = app
        .slack
        .top_level_messages()
        .into_iter()
        .find(|m| m.blocks.to_string().contains("Propose suspension again"))
        .unwrap();
    let seq = drift_events(&app).await[0].seq.to_string();
    let payload = slack_signing::block_action(
        TEAM,
        CAT,
        "propose_suspension_again",
        &seq,
        CHANNEL,
        &alert.ts,
        &app.slack.response_url("drift"),
    );
    let body = slack_signing::interaction_body(&payload);
    let now = slack_signing::now();
    let signature = slack_signing::sign(SIGNING_SECRET, now, &body);
    let first = app
        .post_signed("/slack/interactions", &body, now, Some(&signature))
        .await;
    assert_eq!(first.status(), 200);
    app.eventually("Alice suspended again", || {
        app.op.user_state(ALICE).as_deref() == Some("SUSPENDED")
    })
    .await;
    settle().await;
    let told_before = app.ephemerals_to(CAT).len();

    let replay = app
        .post_signed("/slack/interactions", &body, now, Some(&signature))
        .await;

    assert_eq!(replay.status(), 200, "Slack retries anything else");
    settle().await;
    let alert_id = format!("drift:{seq}");
    let again: Vec<_> = all_proposals(&app)
        .await
        .into_iter()
        .filter(|p| p.source.alert_id.as_deref() == Some(alert_id.as_str()))
        .collect();
    assert_eq!(again.len(), 1, "proposed once");
    let kinds = app.event_kinds().await;
    assert_eq!(
        count(&kinds, "proposal.created"),
        2,
        "the first and the again"
    );
    assert_eq!(count(&kinds, "proposal.evidence_added"), 0);
    assert_eq!(app.op.mutation_count("suspend"), 2);
    assert_eq!(
        app.ephemerals_to(CAT).len(),
        told_before,
        "nothing more said"
    );
}
