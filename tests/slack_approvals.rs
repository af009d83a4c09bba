//! Deciding in Slack: approvals, the two-person rule for restores, vetoes, and who may not
//! decide. Each test drives the real server through signed Slack requests.

mod support;

use countersign::domain::Status;
use support::app::*;

#[tokio::test]
async fn an_approved_suspension_suspends_the_user_updates_the_card_and_verifies() {
    let app = spawn_app().await;
    let proposal = app.propose(&suspend_alice()).await;
    let id = proposal["id"].as_str().unwrap();
    app.card_shows(id, "\"action_id\":\"approve\"").await;

    app.click(BOB, "approve", id).await;

    app.wait_for_status(id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert_eq!(app.op.mutation_count("suspend"), 1);
    let blocks = app.card_shows(id, "Executed").await;
    assert!(
        !blocks.contains("action_id"),
        "a decided card keeps no buttons: {blocks}"
    );
    let ts = app.card_ts(id).await;
    app.eventually("the outcome in the thread", || {
        app.slack.thread_replies(&ts).iter().any(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("suspended in 1Password")
        })
    })
    .await;
    let kinds = app.event_kinds().await;
    for kind in [
        "proposal.created",
        "slack.card_posted",
        "approval.recorded",
        "proposal.approved",
        "execution.started",
        "execution.succeeded",
    ] {
        assert!(
            kinds.contains(&kind.to_string()),
            "{kind} missing from {kinds:?}"
        );
    }
    assert!(app.ledger.verify(&[]).await.unwrap().is_ok());
}

#[tokio::test]
async fn a_restore_waits_for_a_second_approver() {
    let app = spawn_app().await;
    let proposal = app.propose(&restore("mallory@example.com")).await;
    let id = proposal["id"].as_str().unwrap();
    assert_eq!(proposal["approvals_required"], 2);

    app.click(BOB, "approve", id).await;
    app.card_shows(id, "needs a second approver").await;
    assert_eq!(app.status(id).await, Status::Pending);
    assert_eq!(app.op.mutation_count("reactivate"), 0);

    app.click(CAT, "approve", id).await;
    app.wait_for_status(id, Status::Executed).await;
    assert_eq!(app.op.user_state(MALLORY).as_deref(), Some("ACTIVE"));
    assert_eq!(app.op.mutation_count("reactivate"), 1);
}

#[tokio::test]
async fn the_same_person_clicking_twice_counts_once() {
    let app = spawn_app().await;
    let id = app.propose_id(&restore("mallory@example.com")).await;

    app.click(BOB, "approve", &id).await;
    app.click(BOB, "approve", &id).await;

    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("one person counts once"));
    assert_eq!(app.status(&id).await, Status::Pending);
    let approvals = app
        .event_kinds()
        .await
        .iter()
        .filter(|k| *k == "approval.recorded")
        .count();
    assert_eq!(approvals, 1);
    assert_eq!(app.op.mutation_count("reactivate"), 0);
}

#[tokio::test]
async fn an_approver_who_is_the_target_cannot_approve_or_deny() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let events_before = app.event_count().await;

    app.click(ALICE_SLACK, "approve", &id).await;
    assert!(app
        .ephemeral_to(ALICE_SLACK)
        .await
        .contains("your own account"));
    let denial = app
        .submit_denial(ALICE_SLACK, &id, "I did travel, this is really me")
        .await;
    let answer: serde_json::Value = denial.json().await.unwrap();
    assert_eq!(answer["response_action"], "errors");

    assert_eq!(app.status(&id).await, Status::Pending);
    assert_eq!(app.event_count().await, events_before);
}

#[tokio::test]
async fn a_non_approvers_click_changes_nothing() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let events_before = app.event_count().await;

    app.click(EVE, "approve", &id).await;

    assert!(app.ephemeral_to(EVE).await.contains("not an approver"));
    assert_eq!(app.status(&id).await, Status::Pending);
    assert_eq!(app.event_count().await, events_before);
    assert_eq!(app.op.mutation_count("suspend"), 0);
}

#[tokio::test]
async fn an_approver_without_a_profile_email_is_refused() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(NEMO, "approve", &id).await;

    assert!(app.ephemeral_to(NEMO).await.contains("no email"));
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn deny_opens_a_dialog_that_asks_why() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "deny", &id).await;

    app.eventually("the deny dialog", || {
        !app.slack.calls_to("views.open").is_empty()
    })
    .await;
    let opened = app.slack.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].params["view"]["private_metadata"], id.as_str());
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_denial_without_a_reason_is_refused_by_the_dialog() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    let answer: serde_json::Value = app
        .submit_denial(BOB, &id, "  no  ")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(answer["response_action"], "errors");
    assert!(answer["errors"]["reason"]
        .as_str()
        .unwrap()
        .contains("at least 10"));
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_denial_ends_the_proposal_and_nothing_is_executed() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    let answer = app
        .submit_denial(BOB, &id, "Alice is on a sanctioned trip to Lisbon")
        .await;
    assert_eq!(answer.status(), 200);
    app.click(CAT, "approve", &id).await;

    assert_eq!(app.status(&id).await, Status::Denied);
    assert!(app.ephemeral_to(CAT).await.contains("already denied"));
    let blocks = app.card_shows(&id, "Denied").await;
    assert!(blocks.contains("sanctioned trip to Lisbon"));
    assert!(!blocks.contains("action_id"));
    assert_eq!(app.op.mutation_count("suspend"), 0);
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("ACTIVE"));
    let kinds = app.event_kinds().await;
    assert!(kinds.contains(&"proposal.denied".to_string()));
    assert!(!kinds.iter().any(|k| k.starts_with("execution.")));
}
