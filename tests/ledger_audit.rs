//! What auditors get: an export that recomputes, a verify that names how the chain broke,
//! checkpoints that catch a cut tail, and the ledger API.

mod support;

use std::process::Command;
use std::time::Duration;

use countersign::config::Timing;
use countersign::ledger::chain::event_hash;
use countersign::ledger::Scope;
use serde_json::Value;
use support::app::*;

fn countersign(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs SQL on the ledger file with the append-only triggers dropped, as an attacker with the
/// file could.
async fn tamper(app: &TestApp, statements: &[&str]) {
    let pool = support::database::pool(&app.database_url).await;
    for statement in support::database::drop_append_only_triggers(&app.database_url) {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    for statement in statements {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// A suspension from proposal to execution: a dozen events.
async fn executed_suspension(app: &TestApp) -> String {
    let id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, countersign::domain::Status::Executed)
        .await;
    app.card_shows(&id, "Executed").await;
    id
}

#[tokio::test]
async fn a_jsonl_export_round_trips_every_event_and_its_hash() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    let stored = app.ledger.events(0, 10_000).await.unwrap();

    let output = countersign(
        &app.database_url,
        &["ledger", "export", "--format", "jsonl"],
    );

    assert!(output.status.success());
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), stored.len());
    for (line, event) in lines.iter().zip(&stored) {
        let recomputed = event_hash(
            line["prev_hash"].as_str().unwrap(),
            line["seq"].as_i64().unwrap(),
            line["proposal_id"].as_str(),
            line["at"].as_str().unwrap(),
            line["kind"].as_str().unwrap(),
            line["actor"].as_str().unwrap(),
            &line["payload"],
        );
        assert_eq!(recomputed, event.hash, "seq {}", event.seq);
        assert_eq!(line["hash"], event.hash.as_str());
    }
}

#[tokio::test]
async fn a_csv_export_has_a_header_and_the_correlation_columns() {
    let app = spawn_app().await;
    let id = executed_suspension(&app).await;

    let output = countersign(
        &app.database_url,
        &["ledger", "export", "--format", "csv", "--proposal", &id],
    );

    let text = stdout(&output);
    let mut rows = text.lines();
    assert_eq!(
        rows.next().unwrap(),
        "seq,at,kind,actor,proposal_id,alert_id,platform,outcome,drift,payload,prev_hash,hash"
    );
    let succeeded = rows
        .find(|r| r.contains(",execution.succeeded,"))
        .expect("the outcome row");
    assert!(
        succeeded.contains(&format!(",{id},ldt:8f2c,crowdstrike,suspended,")),
        "{succeeded}"
    );
}

#[tokio::test]
async fn verify_names_a_deleted_event() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    tamper(&app, &["DELETE FROM ledger_events WHERE seq = 3"]).await;

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("seq 3 (deleted)"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn verify_names_reordered_events() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    tamper(
        &app,
        &[
            "UPDATE ledger_events SET seq = -1 WHERE seq = 3",
            "UPDATE ledger_events SET seq = 3 WHERE seq = 4",
            "UPDATE ledger_events SET seq = 4 WHERE seq = -1",
        ],
    )
    .await;

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("seq 3 (reordered)"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn a_truncated_tail_is_caught_by_an_earlier_checkpoint() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    let (seq, hash) = app.ledger.checkpoint(chrono::Utc::now()).await.unwrap();
    let checkpoint = format!("{seq}:{hash}");
    tamper(
        &app,
        &[&format!("DELETE FROM ledger_events WHERE seq >= {seq}")],
    )
    .await;

    let plain = countersign(&app.database_url, &["ledger", "verify"]);
    let checked = countersign(
        &app.database_url,
        &["ledger", "verify", "--checkpoint", &checkpoint],
    );

    assert!(
        plain.status.success(),
        "a cut tail leaves a valid shorter chain"
    );
    assert!(!checked.status.success());
    assert!(
        stdout(&checked).contains(&format!("seq {seq} (truncated)")),
        "{}",
        stdout(&checked)
    );
}

#[tokio::test]
async fn verify_reports_events_checked_and_the_head() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    let head = app.ledger.events(0, 10_000).await.unwrap().pop().unwrap();

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    let text = stdout(&output);
    assert!(
        text.contains(&format!("head seq {} hash {}", head.seq, head.hash)),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} events verified", head.seq)),
        "{text}"
    );
}

#[tokio::test]
async fn checkpoints_are_posted_to_the_audit_channel() {
    let timing = Timing {
        checkpoint_every: Duration::from_millis(200),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with_ttls("30m", "24h"), timing).await;
    app.propose(&suspend_alice()).await;

    app.eventually("a checkpoint in the audit channel", || {
        app.slack
            .messages()
            .iter()
            .any(|m| m.channel == AUDIT_CHANNEL)
    })
    .await;

    let posted = app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == AUDIT_CHANNEL)
        .unwrap();
    let text = posted.text.unwrap();
    let checkpoint = text.split('`').nth(1).unwrap().to_owned();
    assert!(app
        .event_kinds()
        .await
        .contains(&"ledger.checkpoint".to_string()));
    let output = countersign(
        &app.database_url,
        &["ledger", "verify", "--checkpoint", &checkpoint],
    );
    assert!(output.status.success(), "{}", stdout(&output));
}

#[tokio::test]
async fn the_ledger_api_pages_events_for_audit_tokens_only() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    let auditor = app.token(&[Scope::AuditRead]).await;
    let reader = app.token(&[Scope::Read]).await;
    let url = |after: i64| format!("/v1/ledger?after_seq={after}&limit=2");

    let first = app.get_json(&url(0), &auditor).await;
    let next = first["next_after_seq"].as_i64().unwrap();
    let second = app.get_json(&url(next), &auditor).await;
    let refused = app
        .http
        .get(format!("{}{}", app.address, url(0)))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();

    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    assert_eq!(next, 2);
    assert_eq!(second["events"][0]["seq"], 3);
    assert_eq!(refused.status(), 403);
}

#[test]
fn policy_check_accepts_a_valid_file_and_names_the_line_of_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&good, "[approvers]\nusers = [\"U0BOB\"]\n").unwrap();
    std::fs::write(
        &bad,
        "[approvers]\nusers = [\"U0BOB\"]\n[restore]\napprovals = 1\n",
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());

    let ok = countersign(&url, &["policy", "check", good.to_str().unwrap()]);
    let refused = countersign(&url, &["policy", "check", bad.to_str().unwrap()]);

    assert!(ok.status.success());
    assert!(!refused.status.success());
    assert!(stdout(&refused).contains("line 4"), "{}", stdout(&refused));
}

#[test]
fn verify_refuses_a_missing_database_instead_of_creating_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let url = format!("sqlite://{}", path.display());

    let output = countersign(&url, &["ledger", "verify"]);

    assert!(!output.status.success());
    assert!(!path.exists(), "verify created a database");
}

#[tokio::test]
async fn a_payload_stored_with_other_spacing_still_verifies_and_an_edited_one_does_not() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    // The same JSON, spaced as another tool might have written it: the chain holds its content.
    tamper(
        &app,
        &["UPDATE ledger_events SET payload = REPLACE(payload, ',', ', ') WHERE seq = 2"],
    )
    .await;

    let respaced = countersign(&app.database_url, &["ledger", "verify"]);
    tamper(
        &app,
        &["UPDATE ledger_events SET payload = REPLACE(payload, 'alice@', 'mallory@') WHERE kind = 'proposal.created'"],
    )
    .await;
    let edited = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(respaced.status.success(), "{}", stdout(&respaced));
    assert!(!edited.status.success());
    assert!(stdout(&edited).contains("(edited)"), "{}", stdout(&edited));
}

#[tokio::test]
async fn an_event_put_in_by_hand_before_the_first_breaks_the_chain() {
    let app = spawn_app().await;
    executed_suspension(&app).await;
    tamper(
        &app,
        &["INSERT INTO ledger_events (seq, proposal_id, at, kind, actor, payload, prev_hash, hash)
           SELECT 0, proposal_id, at, kind, actor, payload, prev_hash, 'forged' FROM ledger_events WHERE seq = 1"],
    )
    .await;

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(!output.status.success(), "{}", stdout(&output));
}

/// Verify reads SQLite's chain in pages of 8192 events, two at a time: a chain of several
/// pages verifies whole, and an edit in a later page is found there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_many_pages_verifies_and_an_edit_deep_in_it_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::database::fresh(dir.path()).await;
    let ledger = countersign::ledger::Ledger::connect(&url).await.unwrap();
    ledger.migrate().await.unwrap();
    let mut tx = ledger.begin().await.unwrap();
    for n in 0..20_000 {
        tx.append(
            None,
            countersign::ledger::EventKind::TokenCreated,
            "cli",
            serde_json::json!({ "n": n }),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let head = ledger.verify(&[]).await.unwrap().expect("the chain holds");
    assert_eq!((head.events, head.seq), (20_000, 20_000));

    for statement in support::database::drop_append_only_triggers(&url) {
        support::database::execute(&url, statement).await.unwrap();
    }
    support::database::execute(
        &url,
        "UPDATE ledger_events SET payload = '{\"n\":-1}' WHERE seq = 17000",
    )
    .await
    .unwrap();
    let broken = ledger
        .verify(&[])
        .await
        .unwrap()
        .expect_err("an edit breaks it");
    assert_eq!(broken.seq, 17_000);
}
