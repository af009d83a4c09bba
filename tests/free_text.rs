//! Free text is validated the same way on both engines: control characters other than newline
//! and tab are refused (PostgreSQL's TEXT cannot hold NUL, and escapes rewrite what a reader
//! sees), by the API with a 422 naming the field and by slash commands with an ephemeral
//! answer. A ledger that already holds such text, from before the rule, still reads.

mod support;

use std::process::Command;

use chrono::Utc;
use countersign::domain::{Proposal, ProposalId};
use countersign::ledger::{EventKind, Scope};
use serde_json::Value;
use support::app::*;

async fn refused(app: &TestApp, body: &Value) -> Value {
    let token = app
        .token(&[Scope::ProposeSuspend, Scope::ProposeRestore])
        .await;
    let response = app.propose_with(&token, body).await;
    assert_eq!(response.status(), 422, "{body}");
    response.json().await.unwrap()
}

fn pointers(problem: &Value) -> Vec<&str> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_reason_with_a_control_character_is_refused_with_422_naming_the_field() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let mut body = suspend_alice();
    body["reason"] = "Token reuse from two hosts\u{1b}[31m at once".into();

    let problem = refused(&app, &body).await;

    assert_eq!(problem["type"], "urn:countersign:problem:invalid_request");
    assert_eq!(pointers(&problem), ["/reason"], "{problem}");
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("control character"),
        "{problem}"
    );
    // One token was created; nothing else was recorded.
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn a_source_field_with_nul_is_refused_on_either_engine() {
    let app = spawn_app().await;
    for (pointer, text) in [
        ("/source/platform", "crowd\u{0}strike"),
        ("/source/alert_id", "ldt:\u{0}8f2c"),
        (
            "/source/alert_url",
            "https://falcon.example.com/ldt/\u{0}8f2c",
        ),
        ("/source/rule", "impossible\u{0}travel"),
        ("/source/severity", "crit\u{0}ical"),
    ] {
        let mut body = suspend_alice();
        *body.pointer_mut(pointer).unwrap() = text.into();

        let problem = refused(&app, &body).await;

        assert_eq!(pointers(&problem), [pointer], "{problem}");
    }
    let kinds = app.event_kinds().await;
    assert!(!kinds.contains(&"proposal.created".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a_slash_command_reason_with_a_control_character_is_refused() {
    let app = spawn_app().await;

    let answer = app
        .command(
            BOB,
            "/suspend",
            "alice@example.com Phished at 3am\u{0} token reused",
            "r1",
        )
        .await;

    assert_eq!(answer["response_type"], "ephemeral");
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("reason"), "{text}");
    assert!(text.contains("control character"), "{text}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.slack.responses("r1").is_empty(), "nothing set off");
    assert!(!app
        .event_kinds()
        .await
        .contains(&"proposal.created".to_owned()));
}

fn export(database_url: &str, format: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["ledger", "export", "--format", format])
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "export --format {format}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn export_and_approvals_read_a_ledger_holding_text_accepted_before_the_rule() {
    let app = spawn_app().await;
    let accepted = app.propose_id(&suspend_alice()).await;
    // A proposal recorded before the rule, with NUL and an escape in its free text: written
    // through the ledger as intake wrote it then.
    let old = app
        .ledger
        .proposal(ProposalId::parse(&accepted).unwrap())
        .await
        .unwrap()
        .unwrap();
    let reason = "Token reuse\u{0}from two hosts\u{1b}[31m at once";
    let mut document = serde_json::to_value(&old).unwrap();
    document["id"] = ProposalId::new().to_string().into();
    document["reason"] = reason.into();
    document["source"]["alert_id"] = "ldt:\u{0}8f2c".into();
    document["source"]["platform"] = "crowd\u{7}strike".into();
    let before_rule: Proposal = serde_json::from_value(document).unwrap();
    let now = Utc::now();
    let mut tx = app.ledger.begin().await.unwrap();
    tx.insert_proposal(&before_rule, now).await.unwrap();
    tx.append(
        Some(before_rule.id),
        EventKind::ProposalCreated,
        &before_rule.requester.actor(),
        serde_json::to_value(&before_rule).unwrap(),
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let jsonl = export(&app.database_url, "jsonl");
    let csv = export(&app.database_url, "csv");
    let listed = app
        .command(BOB, "/approvals", "alice@example.com", "a")
        .await;

    let created: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "proposal.created")
        .collect();
    assert!(
        created.iter().any(|e| e["payload"]["reason"] == reason),
        "the JSONL export is the faithful copy"
    );
    assert!(csv.contains(&before_rule.id.to_string()), "{csv}");
    assert!(
        csv.contains(",ldt:\u{fffd}8f2c,crowd\u{7}strike,"),
        "NUL reads as U+FFFD in a CSV cell on either engine: {csv}"
    );
    let text = listed["text"].as_str().unwrap();
    assert!(text.contains("Proposals about that user"), "{text}");
    assert_eq!(text.matches('•').count(), 2, "{text}");
}
