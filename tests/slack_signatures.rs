//! Requests that do not come from Slack are refused with 401 and change nothing.

mod support;

use countersign::domain::Status;
use serde_json::Value;
use support::app::*;
use support::slack_signing::{self, SIGNING_SECRET};

async fn approve_body(app: &TestApp) -> (String, String) {
    let id = app.propose_id(&suspend_alice()).await;
    let ts = app.card_ts(&id).await;
    let payload = slack_signing::block_action(
        TEAM,
        BOB,
        "approve",
        &id,
        CHANNEL,
        &ts,
        &app.slack.response_url("x"),
    );
    (id, slack_signing::interaction_body(&payload))
}

async fn assert_untouched(app: &TestApp, id: &str, events_before: usize) {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.status(id).await, Status::Pending);
    assert_eq!(app.event_count().await, events_before);
    assert_eq!(app.op.mutation_count("suspend"), 0);
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let app = spawn_app().await;
    let (id, body) = approve_body(&app).await;
    let before = app.event_count().await;
    let now = slack_signing::now();
    let forged = slack_signing::sign("not-the-signing-secret", now, &body);

    let response = app
        .post_signed("/slack/interactions", &body, now, Some(&forged))
        .await;

    assert_eq!(response.status(), 401);
    assert_untouched(&app, &id, before).await;
}

#[tokio::test]
async fn a_stale_request_is_refused() {
    let app = spawn_app().await;
    let (id, body) = approve_body(&app).await;
    let before = app.event_count().await;
    let ten_minutes_ago = slack_signing::now() - 600;
    let signature = slack_signing::sign(SIGNING_SECRET, ten_minutes_ago, &body);

    let response = app
        .post_signed(
            "/slack/interactions",
            &body,
            ten_minutes_ago,
            Some(&signature),
        )
        .await;

    assert_eq!(response.status(), 401);
    assert_untouched(&app, &id, before).await;
}

#[tokio::test]
async fn an_unsigned_request_is_refused() {
    let app = spawn_app().await;
    let (id, body) = approve_body(&app).await;
    let before = app.event_count().await;

    let response = app.post_signed("/slack/interactions", &body, 0, None).await;

    assert_eq!(response.status(), 401);
    assert_untouched(&app, &id, before).await;
}

#[tokio::test]
async fn a_body_altered_after_signing_is_refused() {
    let app = spawn_app().await;
    let (id, body) = approve_body(&app).await;
    let before = app.event_count().await;
    let now = slack_signing::now();
    let signature = slack_signing::sign(SIGNING_SECRET, now, &body);
    let altered = body.replace("U0BOB", "U0CAT");

    let response = app
        .post_signed("/slack/interactions", &altered, now, Some(&signature))
        .await;

    assert_eq!(response.status(), 401);
    assert_untouched(&app, &id, before).await;
}

#[tokio::test]
async fn a_request_from_another_workspace_is_refused() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let ts = app.card_ts(&id).await;
    let before = app.event_count().await;
    let payload: Value = slack_signing::block_action(
        "T0OTHER",
        BOB,
        "approve",
        &id,
        CHANNEL,
        &ts,
        &app.slack.response_url("x"),
    );

    let response = app.interact(&payload).await;

    assert_eq!(response.status(), 401);
    assert_untouched(&app, &id, before).await;
}
