//! Duplicates from automation and concurrent clicks: one proposal, one card, one action.

mod support;

use countersign::domain::Status;
use countersign::ledger::Scope;
use serde_json::{json, Value};
use support::app::*;

async fn post(app: &TestApp, token: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/v1/proposals", app.address))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn a_replay_with_the_same_key_and_body_returns_the_same_proposal() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;

    let (first_status, first) = post(&app, &token, Some("alert-8f2c"), &suspend_alice()).await;
    let (second_status, second) = post(&app, &token, Some("alert-8f2c"), &suspend_alice()).await;

    assert_eq!((first_status, second_status), (201, 200));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(count(&app.event_kinds().await, "proposal.created"), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let app = spawn_app().await;
    let token = app
        .token(&[Scope::ProposeSuspend, Scope::ProposeRestore])
        .await;
    post(&app, &token, Some("alert-8f2c"), &suspend_alice()).await;
    let mut other = suspend_alice();
    other["reason"] = json!("A different reason for the same key");

    let (status, problem) = post(&app, &token, Some("alert-8f2c"), &other).await;

    assert_eq!(status, 409);
    assert_eq!(problem["code"], "idempotency_conflict");
}

#[tokio::test]
async fn a_second_report_for_the_same_user_folds_in_by_email_and_by_id() {
    let app = spawn_app().await;
    let first = app.propose(&suspend_alice()).await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let mut by_id = suspend_alice();
    by_id["user"] = json!({"id": ALICE});
    by_id["source"] = json!({"platform": "elastic", "rule": "mass-export"});

    // Another alert by email (one repeating the first alert would add nothing).
    let mut by_email = suspend_alice();
    by_email["source"]["alert_id"] = json!("ldt:9a01");
    let (by_email_status, by_email) = post(&app, &token, None, &by_email).await;
    let (by_id_status, folded) = post(&app, &token, None, &by_id).await;

    assert_eq!((by_email_status, by_id_status), (200, 200));
    assert_eq!(by_email["id"], first["id"]);
    assert_eq!(folded["id"], first["id"]);
    assert_eq!(folded["evidence"].as_array().unwrap().len(), 2);
    assert_eq!(folded["approvals"], json!([]));
    assert_eq!(folded["expires_at"], first["expires_at"]);
    let kinds = app.event_kinds().await;
    assert_eq!(count(&kinds, "proposal.created"), 1);
    assert_eq!(count(&kinds, "proposal.evidence_added"), 2);
    let ts = app.card_ts(first["id"].as_str().unwrap()).await;
    app.eventually("the evidence in the thread", || {
        app.slack
            .thread_replies(&ts)
            .iter()
            .any(|m| m.text.as_deref().unwrap_or_default().contains("elastic"))
    })
    .await;
    assert_eq!(app.slack.top_level_messages().len(), 1, "no second card");
}

#[tokio::test]
async fn the_opposite_action_while_one_is_pending_is_a_conflict() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;
    let token = app.token(&[Scope::ProposeRestore]).await;

    let (status, problem) = post(&app, &token, None, &restore("alice@example.com")).await;

    assert_eq!(status, 409);
    assert_eq!(problem["code"], "opposite_action_pending");
}

#[tokio::test]
async fn a_hundred_concurrent_approvals_of_a_restore_reactivate_once() {
    let app = spawn_app().await;
    let responders: Vec<String> = (1..=100).map(|n| format!("U0R{n:03}")).collect();
    for id in &responders {
        app.slack
            .add_user(id, id, Some(&format!("{}@example.com", id.to_lowercase())));
    }
    let members: Vec<&str> = responders.iter().map(String::as_str).collect();
    app.slack.add_usergroup(ONCALL, &members);
    let id = app.propose_id(&restore("mallory@example.com")).await;

    let clicks = responders
        .iter()
        .map(|user| app.click(user, "approve", &id));
    futures_util::future::join_all(clicks).await;

    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.mutation_count("reactivate"), 1);
    let kinds = app.event_kinds().await;
    assert_eq!(count(&kinds, "approval.recorded"), 2);
    assert_eq!(count(&kinds, "proposal.approved"), 1);
    assert_eq!(count(&kinds, "execution.succeeded"), 1);
}

#[tokio::test]
async fn a_report_about_a_proposal_whose_time_ran_out_starts_a_new_one() {
    // The sweeper never runs here, so only the intake can notice the expiry.
    let timing = countersign::config::Timing {
        sweep_every: std::time::Duration::from_secs(3600),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with_ttls("1s", "24h"), timing).await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let (_, first) = post(&app, &token, None, &suspend_alice()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (status, second) = post(&app, &token, None, &suspend_alice()).await;

    assert_eq!(status, 201);
    assert_ne!(second["id"], first["id"]);
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(
        app.status(first_id).await,
        countersign::domain::Status::Expired
    );
    assert_eq!(count(&app.event_kinds().await, "proposal.expired"), 1);
}
