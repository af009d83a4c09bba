//! Operator-written auto-approve rules: suspensions only, by the token's own name, under an
//! hourly cap, never for protected users.

mod support;

use countersign::domain::Status;
use countersign::ledger::Scope;
use serde_json::{json, Value};
use support::app::*;

const RULE: &str = r#"
[[auto_approve]]
name = "crowdstrike-high"
integration = "crowdstrike"
min_confidence = "high"
max_per_hour = 1
"#;

async fn app_with_rule(protected: &str) -> TestApp {
    spawn_app_with(&policy_with(protected, RULE), test_timing()).await
}

async fn propose_as(app: &TestApp, token_name: &str, body: &Value) -> Value {
    let token = app
        .token_named(token_name, &[Scope::ProposeSuspend, Scope::ProposeRestore])
        .await;
    let response = app.propose_with(&token, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn suspend(email: &str) -> Value {
    let mut body = suspend_alice();
    body["user"] = json!({"email": email});
    body
}

#[tokio::test]
async fn a_matching_high_confidence_suspend_is_approved_by_the_rule() {
    let app = app_with_rule("").await;

    let proposal = propose_as(&app, "crowdstrike", &suspend_alice()).await;

    assert_eq!(proposal["status"], "approved");
    assert_eq!(proposal["auto_approved_by"], "crowdstrike-high");
    let id = proposal["id"].as_str().unwrap();
    app.wait_for_status(id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    let events = app.ledger.events(0, 1000).await.unwrap();
    let approved = events
        .iter()
        .find(|e| e.kind == "proposal.approved")
        .unwrap();
    assert_eq!(approved.actor, "policy:crowdstrike-high");
    app.card_shows(id, "policy rule `crowdstrike-high`").await;
}

#[tokio::test]
async fn the_rule_stops_at_its_hourly_cap() {
    let app = app_with_rule("").await;

    let first = propose_as(&app, "crowdstrike", &suspend_alice()).await;
    let second = propose_as(&app, "crowdstrike", &suspend("mallory@example.com")).await;

    assert_eq!(first["status"], "approved");
    assert_eq!(second["status"], "pending", "beyond the cap, humans decide");
}

#[tokio::test]
async fn a_caller_sent_platform_does_not_stand_for_the_tokens_name() {
    let app = app_with_rule("").await;
    let mut body = suspend_alice();
    body["source"]["platform"] = json!("crowdstrike");

    let proposal = propose_as(&app, "tines", &body).await;

    assert_eq!(proposal["status"], "pending");
}

#[tokio::test]
async fn a_restore_is_never_auto_approved() {
    let app = app_with_rule("").await;
    let mut body = restore("mallory@example.com");
    body["source"] = json!({"platform": "crowdstrike", "confidence": "high"});

    let proposal = propose_as(&app, "crowdstrike", &body).await;

    assert_eq!(proposal["status"], "pending");
    assert_eq!(proposal["approvals_required"], 2);
}

#[tokio::test]
async fn a_protected_user_is_never_auto_approved_and_needs_two_approvers() {
    let app = app_with_rule(r#"protected = ["Alice@example.com"]"#).await;

    let proposal = propose_as(&app, "crowdstrike", &suspend_alice()).await;

    assert_eq!(proposal["status"], "pending");
    assert_eq!(proposal["approvals_required"], 2);
}

#[tokio::test]
async fn a_lower_confidence_waits_for_humans() {
    let app = app_with_rule("").await;
    let mut body = suspend_alice();
    body["source"]["confidence"] = json!("medium");

    assert_eq!(
        propose_as(&app, "crowdstrike", &body).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_suspend_the_rule_approves_after_a_restore_stamped_by_a_fast_clock_is_the_newer_decision()
{
    let app = app_with_rule("").await;
    // Mallory was restored; the approval was recorded by a replica whose clock runs fast.
    app.restore_mallory_on_a_fast_clock().await;

    // A new high-confidence alert: the rule approves the suspension at once.
    let proposal = propose_as(&app, "crowdstrike", &suspend("mallory@example.com")).await;

    assert_eq!(proposal["status"], "approved");
    let id = proposal["id"].as_str().unwrap();
    app.wait_for_status(id, Status::Executed).await;
    assert_eq!(app.op.user_state(MALLORY).as_deref(), Some("SUSPENDED"));
}
