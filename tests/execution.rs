//! Executing an approved action in 1Password: read first, act once, read back, record.

mod support;

use countersign::domain::Status;
use serde_json::json;
use support::app::*;

#[tokio::test]
async fn an_already_suspended_user_is_recorded_as_such_and_no_suspend_call_is_made() {
    let app = spawn_app().await;
    let mut body = suspend_alice();
    body["user"] = json!({"email": "mallory@example.com"});
    let id = app.propose_id(&body).await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    let proposal: serde_json::Value =
        serde_json::to_value(app.ledger.proposal(id.parse().unwrap()).await.unwrap()).unwrap();
    assert_eq!(proposal["execution"]["outcome"], "already_suspended");
    assert_eq!(app.op.mutation_count("suspend"), 0);
    app.card_shows(&id, "already suspended").await;
}

#[tokio::test]
async fn every_call_and_the_state_1password_answered_are_recorded() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;

    let events = app.ledger.events(0, 1000).await.unwrap();
    let succeeded = events
        .iter()
        .find(|e| e.kind == "execution.succeeded")
        .unwrap();
    assert_eq!(succeeded.payload["outcome"], "suspended");
    let calls: Vec<&str> = succeeded.payload["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request"].as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        // The suspend's answer carries the updated user: no read-back is needed.
        [
            format!("GET users/{ALICE}"),
            format!("POST users/{ALICE}:suspend"),
        ]
    );
    assert_eq!(succeeded.payload["state"], "SUSPENDED");
}

#[tokio::test]
async fn a_permanent_1password_refusal_fails_the_proposal_with_the_message() {
    let app = spawn_app().await;
    app.op.fail_user(ALICE, 403, "no_owner_remain");
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Failed).await;
    assert_eq!(app.op.mutation_count("suspend"), 1);
    let blocks = app.card_shows(&id, "no_owner_remain").await;
    assert!(
        blocks.contains("\"action_id\":\"retry\""),
        "a failed card offers Retry"
    );
}

#[tokio::test]
async fn a_transient_1password_failure_is_retried_to_one_success() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    app.op.fail_next(1, 503, Some(0));

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert_eq!(app.op.mutation_count("suspend"), 1);
    assert!(app
        .event_kinds()
        .await
        .contains(&"execution.attempt_failed".to_string()));
}

#[tokio::test]
async fn an_expired_1password_token_is_refreshed_once_and_the_call_retried() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let tokens_before = app.op.token_requests();
    app.op.revoke_tokens();

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.token_requests(), tokens_before + 1);
    assert_eq!(app.op.mutation_count("suspend"), 1);
}

#[tokio::test]
async fn an_approver_can_retry_a_failed_execution_and_a_non_approver_cannot() {
    let app = spawn_app().await;
    app.op.fail_user(ALICE, 403, "externally managed admin");
    let id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Failed).await;
    app.op.clear_user_failure(ALICE);

    app.click(EVE, "retry", &id).await;
    assert!(app.ephemeral_to(EVE).await.contains("not an approver"));
    assert_eq!(app.status(&id).await, Status::Failed);
    app.click(CAT, "retry", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    let events = app.ledger.events(0, 1000).await.unwrap();
    let retry = events
        .iter()
        .find(|e| e.kind == "execution.retry_requested")
        .unwrap();
    assert_eq!(retry.actor, "slack:U0CAT");
}
