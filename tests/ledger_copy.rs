//! `countersign ledger copy`: a SQLite ledger moves into an empty PostgreSQL one with every
//! event's seq and hash, and the copy verifies to the same head.
//!
//! Needs `COUNTERSIGN_TEST_POSTGRES` (`.ci/postgres start`); skipped with a message without
//! it, required under `CI=true`.

mod support;

use std::process::{Command, Output};

use countersign::domain::Status;
use countersign::ledger::Ledger;
use support::app::*;
use support::database;

fn countersign(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .env("DATABASE_URL", database_url)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// `countersign ledger copy --from … --to …` (it needs no DATABASE_URL of its own).
fn copy(from: &str, to: &str) -> Output {
    countersign(
        "sqlite::memory:",
        &["ledger", "copy", "--from", from, "--to", to],
    )
}

/// Copies `from` into `to` with the CLI, which must succeed, and opens both ledgers read-only.
async fn copied(from: &str, to: &str) -> (Ledger, Ledger) {
    let output = copy(from, to);
    assert!(output.status.success(), "{}", stdout(&output));
    let source = Ledger::open_read_only(from).await.unwrap();
    let target = Ledger::open_read_only(to).await.unwrap();
    (source, target)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A SQLite ledger of a few hundred events: forty suspensions proposed, approved and
/// executed, and some tokens. Returns the app (shut down) and its `ledger verify` line.
async fn a_used_sqlite_ledger() -> (TestApp, String) {
    let app = spawn_app_on_sqlite().await;
    let mut proposals = Vec::new();
    for i in 0..40 {
        let (id, email) = (format!("USER{i:022}"), format!("user{i}@example.com"));
        app.op.add_user(&id, &email, "Someone", "ACTIVE");
        let mut body = suspend_alice();
        body["user"]["email"] = email.into();
        proposals.push(app.propose_id(&body).await);
    }
    for id in &proposals {
        app.card_ts(id).await;
        app.click(BOB, "approve", id).await;
    }
    for id in &proposals {
        app.wait_for_status(id, Status::Executed).await;
    }
    app.shut_down().await;
    let verified = countersign(&app.database_url, &["ledger", "verify"]);
    assert!(verified.status.success(), "{}", stdout(&verified));
    (app, stdout(&verified))
}

#[tokio::test]
async fn a_sqlite_ledger_copied_to_postgres_verifies_to_the_same_head_and_exports_the_same() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let (app, source_verified) = a_used_sqlite_ledger().await;
    let target = database::fresh_postgres(&server).await;

    let copied = copy(&app.database_url, &target);

    assert!(copied.status.success(), "{}", stdout(&copied));
    assert!(stdout(&copied).contains("ledger copied and verified"));
    let target_verified = countersign(&target, &["ledger", "verify"]);
    assert!(
        target_verified.status.success(),
        "{}",
        stdout(&target_verified)
    );
    assert_eq!(
        stdout(&target_verified),
        source_verified,
        "same events, same head"
    );
    let events: u64 = source_verified
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(events >= 200, "a few hundred events: {source_verified}");
    let source_export = countersign(&app.database_url, &["ledger", "export"]);
    let target_export = countersign(&target, &["ledger", "export"]);
    assert!(!source_export.stdout.is_empty());
    assert_eq!(
        source_export.stdout, target_export.stdout,
        "byte-identical JSONL on either engine"
    );
    let csv = |url: &str| countersign(url, &["ledger", "export", "--format", "csv"]).stdout;
    assert_eq!(csv(&app.database_url), csv(&target));
}

#[tokio::test]
async fn the_copy_carries_the_current_state_so_the_new_ledger_serves_it() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let (app, _) = a_used_sqlite_ledger().await;
    let token_line = countersign(&app.database_url, &["token", "list"]);
    let target = database::fresh_postgres(&server).await;

    let (source, copy) = copied(&app.database_url, &target).await;

    let query = countersign::ledger::ProposalQuery {
        limit: 100,
        ..Default::default()
    };
    let (before, after) = (
        source.proposals(&query).await.unwrap(),
        copy.proposals(&query).await.unwrap(),
    );
    assert_eq!(before.len(), 40);
    assert_eq!(
        serde_json::to_value(&before).unwrap(),
        serde_json::to_value(&after).unwrap()
    );
    assert_eq!(
        stdout(&countersign(&target, &["token", "list"])),
        stdout(&token_line)
    );
    assert_eq!(
        copy.outbox_depth().await.unwrap(),
        source.outbox_depth().await.unwrap()
    );
}

#[tokio::test]
async fn the_copy_carries_passkeys_and_gateway_clients_so_they_still_work() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let app = spawn_app_on_sqlite().await;
    app.enroll(BOB).await;
    let all = countersign::ledger::GatewayPermission::ALL;
    let (client, secret) = app.gateway_client("sumo-cloud-soar", &all).await;
    app.shut_down().await;
    let target = database::fresh_postgres(&server).await;

    let (source, copy) = copied(&app.database_url, &target).await;

    assert_eq!(
        copy.passkeys().await.unwrap(),
        source.passkeys().await.unwrap()
    );
    assert_eq!(copy.passkeys().await.unwrap().len(), 1);
    let found = copy
        .gateway_client_by_secret(&client, &secret)
        .await
        .unwrap();
    assert_eq!(found.map(|c| c.name).as_deref(), Some("sumo-cloud-soar"));
}

#[tokio::test]
async fn copying_into_a_ledger_that_has_events_is_refused_and_changes_nothing() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let (app, _) = a_used_sqlite_ledger().await;
    let target = database::fresh_postgres(&server).await;
    let first = copy(&app.database_url, &target);
    assert!(first.status.success(), "{}", stdout(&first));
    let before = stdout(&countersign(&target, &["ledger", "verify"]));

    let again = copy(&app.database_url, &target);

    assert_eq!(again.status.code(), Some(1));
    assert!(stdout(&again).contains("not empty"), "{}", stdout(&again));
    assert_eq!(stdout(&countersign(&target, &["ledger", "verify"])), before);
}
