//! Slack under stress: cards never abandoned, commands never lost, only real colleagues
//! decide, and links that cannot be disguised.

mod support;

use std::time::Duration;

use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;
use support::fake_slack::SlackUserKind;

async fn wait_for_readiness(app: &TestApp, status: &str) -> Value {
    for _ in 0..400 {
        let ready = app.readiness().await;
        if ready["status"] == status {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/readyz never said {status}: {}", app.readiness().await);
}

// ---- 1. A card is never abandoned while its proposal is pending ----

#[tokio::test]
async fn a_card_is_posted_once_when_slack_answers_after_an_outage_of_many_tries() {
    let app = spawn_app().await;
    app.slack.fail_method("chat.postMessage", 500);
    let id = app.propose_unsettled(&suspend_alice()).await;

    app.eventually("more tries than the eight it used to give up after", || {
        app.slack.calls_to("chat.postMessage").len() > 10
    })
    .await;
    let degraded = wait_for_readiness(&app, "degraded").await;
    assert_eq!(degraded["cards_overdue"], 1);
    app.slack.clear_failure("chat.postMessage");

    app.card_ts(&id).await;
    assert_eq!(app.slack.top_level_messages().len(), 1, "exactly one card");
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    let ready = wait_for_readiness(&app, "ready").await;
    assert_eq!(ready["cards_overdue"], 0);
}

#[tokio::test]
async fn overdue_cards_are_counted_in_the_metrics() {
    let app = spawn_app().await;
    app.slack.fail_method("chat.postMessage", 500);
    app.propose_unsettled(&suspend_alice()).await;
    wait_for_readiness(&app, "degraded").await;

    let metrics = app.metrics().await;

    assert!(metrics.contains("countersign_cards_overdue 1"), "{metrics}");
}

#[tokio::test]
async fn a_proposal_that_expires_before_its_card_is_posted_says_so_in_the_ledger() {
    let app = spawn_app_with(&policy_with_ttls("1s", "24h"), test_timing()).await;
    app.slack.fail_method("chat.postMessage", 500);
    let id = app.propose_unsettled(&suspend_alice()).await;

    app.wait_for_status(&id, Status::Expired).await;

    let events = app.ledger.events(0, 1000).await.unwrap();
    let expired = events
        .iter()
        .find(|e| e.kind == "proposal.expired")
        .unwrap();
    assert_eq!(expired.payload["card_posted"], false);
}

// ---- 2. An acknowledged slash command is never lost ----

#[tokio::test]
async fn an_acknowledged_suspend_is_finished_before_a_graceful_shutdown() {
    let app = spawn_app().await;
    app.op.set_delay(Duration::from_millis(500));
    let answer = app
        .command(
            BOB,
            "/suspend",
            "alice@example.com Impossible travel then a vault export",
            "r1",
        )
        .await;
    assert!(answer["text"].as_str().unwrap().contains("Looking up"));

    app.shut_down().await;

    assert!(app
        .event_kinds()
        .await
        .contains(&"proposal.created".to_owned()));
    assert!(
        !app.slack.responses("r1").is_empty(),
        "the requester heard back"
    );
}

#[tokio::test]
async fn a_suspend_unfinished_when_the_drain_ends_is_reported_to_its_requester() {
    let timing = countersign::config::Timing {
        command_drain: Duration::from_millis(200),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with("", ""), timing).await;
    app.op.set_delay(Duration::from_secs(3));
    app.command(
        BOB,
        "/suspend",
        "alice@example.com Impossible travel then a vault export",
        "r2",
    )
    .await;

    app.shut_down().await;

    let told = app.slack.responses("r2");
    let text = told[0]["text"].as_str().unwrap();
    assert!(text.contains("may not have been recorded"), "{text}");
}

// ---- 3. Only real colleagues decide ----

async fn refused_approval_by(kind: SlackUserKind, reason: &str) {
    let app = spawn_app().await;
    let odd = "U0ODD";
    app.slack
        .add_user_of_kind(odd, "Odd", Some("odd@example.com"), kind);
    app.slack.add_usergroup(ONCALL, &[odd]);
    let id = app.propose_id(&suspend_alice()).await;

    app.click(odd, "approve", &id).await;

    let told = app.ephemeral_to(odd).await;
    assert!(told.contains(reason), "{told}");
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_guest_listed_as_an_approver_cannot_approve() {
    refused_approval_by(SlackUserKind::Guest, "guest").await;
}

#[tokio::test]
async fn a_single_channel_guest_listed_as_an_approver_cannot_approve() {
    refused_approval_by(SlackUserKind::SingleChannelGuest, "guest").await;
}

#[tokio::test]
async fn a_bot_listed_as_an_approver_cannot_approve() {
    refused_approval_by(SlackUserKind::Bot, "bot").await;
}

#[tokio::test]
async fn an_app_user_listed_as_an_approver_cannot_approve() {
    refused_approval_by(SlackUserKind::App, "bot or an app").await;
}

#[tokio::test]
async fn a_deactivated_user_listed_as_an_approver_cannot_approve() {
    refused_approval_by(SlackUserKind::Deactivated, "deactivated").await;
}

#[tokio::test]
async fn a_slack_connect_user_from_another_workspace_cannot_approve() {
    refused_approval_by(
        SlackUserKind::OtherWorkspace("T0ELSEWHERE".into()),
        "another Slack workspace",
    )
    .await;
}

#[tokio::test]
async fn a_guest_listed_as_an_approver_cannot_deny_or_retry_either() {
    let app = spawn_app().await;
    app.slack.add_user_of_kind(
        "U0GUEST",
        "Guest",
        Some("guest@example.com"),
        SlackUserKind::Guest,
    );
    app.slack.add_usergroup(ONCALL, &["U0GUEST"]);
    app.op.fail_user(ALICE, 403, "permission denied");
    let failed = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &failed).await;
    app.wait_for_status(&failed, Status::Failed).await;
    let pending = app.propose_id(&restore("mallory@example.com")).await;

    let denied = app
        .submit_denial("U0GUEST", &pending, "Not a real incident, closing")
        .await;
    app.click("U0GUEST", "retry", &failed).await;

    let denial: Value = denied.json().await.unwrap_or(Value::Null);
    assert!(denial.to_string().contains("guest"), "{denial}");
    assert!(app.ephemeral_to("U0GUEST").await.contains("guest"));
    assert_eq!(app.status(&pending).await, Status::Pending);
    assert_eq!(app.status(&failed).await, Status::Failed);
}

// ---- 4. The alert link cannot be disguised ----

#[tokio::test]
async fn the_card_never_labels_a_link_with_another_hosts_address() {
    let app = spawn_app().await;
    let mut body = suspend_alice();
    body["source"]["alert_id"] = json!("https://falcon.crowdstrike.com/activity/detections/ldt:1");
    body["source"]["alert_url"] = json!("https://evil.example/phish");

    let id = app.propose_id(&body).await;

    let blocks = app.card(&id).await.blocks.to_string();
    assert!(
        blocks.contains("<https://evil.example/phish|alert>"),
        "{blocks}"
    );
    assert!(
        blocks.contains("evil.example`)"),
        "the real host is shown: {blocks}"
    );
    assert!(!blocks.contains("|https://falcon"), "{blocks}");
}

// ---- 5. Smaller holes ----

#[tokio::test]
async fn a_card_whose_post_answer_was_lost_is_found_by_its_metadata_not_by_text() {
    let app = spawn_app().await;
    app.slack.lose_answer_next("chat.postMessage", 1);
    let id = app.propose_unsettled(&suspend_alice()).await;
    app.eventually("the first post", || {
        !app.slack.calls_to("chat.postMessage").is_empty()
    })
    .await;
    // Someone pastes the proposal id in the channel before the retry looks for the card.
    let pasted = app
        .slack
        .post_as_user(CHANNEL, EVE, &format!("is {id} a real alert?"));

    let card = app.card_ts(&id).await;

    let cards = app.slack.top_level_messages();
    assert_eq!(cards.len(), 1, "no second card");
    assert_eq!(card, cards[0].ts);
    assert_ne!(card, pasted);
    let history = app.slack.calls_to("conversations.history");
    assert_eq!(history[0].params["include_all_metadata"], "true");
}

#[tokio::test]
async fn readiness_does_not_wait_for_the_write_lock_on_every_probe() {
    let app = spawn_app().await;
    assert_eq!(app.readiness().await["status"], "ready");
    // Another writer holds the database's write lock.
    let blocker = support::database::hold_write_lock(&app.database_url).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    for _ in 0..20 {
        let probe = quick.get(format!("{}/readyz", app.address)).send().await;
        assert!(
            probe.is_ok_and(|r| r.status() == 200),
            "a probe waited on the writer"
        );
    }
    drop(blocker);
}
