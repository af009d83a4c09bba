//! What one caller can store: a proposal keeps at most a hundred reports, a report repeating an
//! alert it holds adds nothing, and idempotency keys are forgotten after their day.

mod support;

use serde_json::{json, Value};
use sqlx::Row;
use support::app::*;
use support::database;

fn alert(id: &str) -> Value {
    let mut body = suspend_alice();
    body["source"] = json!({"platform": "tines", "alert_id": id});
    body
}

/// One SOAR's token, reporting again and again.
async fn soar(app: &TestApp) -> String {
    app.token_named("tines", &[countersign::ledger::Scope::ProposeSuspend])
        .await
}

async fn report(app: &TestApp, token: &str, body: &Value) -> String {
    let response = app.propose_with(token, body).await;
    assert!(response.status().is_success(), "{}", response.status());
    let answer: Value = response.json().await.unwrap();
    answer["id"].as_str().unwrap().to_owned()
}

async fn evidence_events(app: &TestApp) -> usize {
    app.event_kinds()
        .await
        .iter()
        .filter(|k| *k == "proposal.evidence_added")
        .count()
}

#[tokio::test]
async fn a_report_repeating_an_alert_the_proposal_holds_adds_nothing() {
    let app = spawn_app().await;
    let token = soar(&app).await;
    let id = report(&app, &token, &alert("ALERT-1")).await;
    app.card_ts(&id).await;
    let events_before = app.event_count().await;

    let again = report(&app, &token, &alert("ALERT-1")).await;

    assert_eq!(again, id);
    let proposal = app.proposal(&id).await;
    assert!(proposal.evidence.is_empty());
    assert_eq!(evidence_events(&app).await, 0);
    assert_eq!(app.event_count().await, events_before);
}

#[tokio::test]
async fn reports_beyond_a_hundred_are_counted_and_not_kept() {
    let app = spawn_app().await;
    let token = soar(&app).await;
    let id = report(&app, &token, &alert("ALERT-0")).await;

    for n in 1..=105 {
        report(&app, &token, &alert(&format!("ALERT-{n}"))).await;
    }

    let proposal = app.proposal(&id).await;
    assert_eq!(proposal.evidence.len(), 100);
    assert_eq!(proposal.evidence_not_kept, 5);
    assert_eq!(evidence_events(&app).await, 100);
}

#[tokio::test]
async fn idempotency_keys_older_than_a_day_are_forgotten() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    database::execute(
        &app.database_url,
        &format!(
            "INSERT INTO idempotency_keys (token_id, key, body_sha256, proposal_id, created_at)
             VALUES ('old-token', 'old-key', 'x', '{id}', '2020-01-01T00:00:00.000000Z')"
        ),
    )
    .await
    .unwrap();
    let token = app
        .token(&[countersign::ledger::Scope::ProposeRestore])
        .await;

    let response = app
        .http
        .post(format!("{}/v1/proposals", app.address))
        .bearer_auth(&token)
        .header("Idempotency-Key", "fresh-key")
        .json(&restore("mallory@example.com"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 201);
    let pool = database::pool(&app.database_url).await;
    let keys: Vec<String> = sqlx::query("SELECT key FROM idempotency_keys ORDER BY key")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("key"))
        .collect();
    assert_eq!(keys, ["fresh-key"]);
}

/// Proposes `body` and returns the first error's pointer of the 422 it must get.
async fn refused_at(app: &TestApp, body: &Value) -> String {
    let token = soar(app).await;
    let response = app.propose_with(&token, body).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    problem["errors"][0]["pointer"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reason_over_1000_bytes_is_refused_though_under_1000_characters() {
    let app = spawn_app().await;
    let mut body = suspend_alice();
    // 600 characters, 1200 bytes.
    body["reason"] = json!("é".repeat(600));

    assert_eq!(refused_at(&app, &body).await, "/reason");
    assert!(!app
        .event_kinds()
        .await
        .contains(&"proposal.created".to_owned()));
}

#[tokio::test]
async fn a_source_field_over_500_bytes_is_refused_though_under_500_characters() {
    let app = spawn_app().await;
    let mut body = alert("x");
    // 300 characters, 600 bytes.
    body["source"]["alert_id"] = json!("é".repeat(300));

    assert_eq!(refused_at(&app, &body).await, "/source/alert_id");
    assert!(!app
        .event_kinds()
        .await
        .contains(&"proposal.created".to_owned()));
}
