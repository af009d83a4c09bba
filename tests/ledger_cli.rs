//! The `countersign` binary's ledger and token commands, run as an operator would.

mod support;

use std::process::Command;

use support::app::*;

fn countersign(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LOG_FORMAT", "pretty")
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn an_intact_ledger_verifies() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ledger ok"));
}

#[tokio::test]
async fn editing_a_ledger_row_by_hand_makes_verify_fail_and_name_the_row() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;
    let pool = support::database::pool(&app.database_url).await;
    // The append-only trigger refuses edits; an attacker with the file can drop it first.
    for statement in support::database::drop_append_only_triggers(&app.database_url) {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    sqlx::query("UPDATE ledger_events SET actor = 'integration:someone-else' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();

    let output = countersign(&app.database_url, &["ledger", "verify"]);

    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("seq 2"), "{stdout}");
    assert!(stdout.contains("edited"), "{stdout}");
}

#[tokio::test]
async fn the_ledger_refuses_updates_and_deletes() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;
    let pool = support::database::pool(&app.database_url).await;

    let update = sqlx::query("UPDATE ledger_events SET actor = 'x' WHERE seq = 1")
        .execute(&pool)
        .await;
    let delete = sqlx::query("DELETE FROM ledger_events WHERE seq = 1")
        .execute(&pool)
        .await;

    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn token_create_prints_only_the_secret_on_stdout_and_stores_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());

    let output = countersign(
        &url,
        &[
            "token",
            "create",
            "--name",
            "tines",
            "--scope",
            "propose:suspend",
            "--scope",
            "read",
        ],
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret = String::from_utf8(output.stdout).unwrap();
    let secret = secret.trim();
    assert!(secret.starts_with("cs_") && !secret.contains(char::is_whitespace));
    let listed = String::from_utf8(countersign(&url, &["token", "list"]).stdout).unwrap();
    assert!(listed.contains("tines") && listed.contains("propose:suspend,read"));
    assert!(!listed.contains(secret));
    let db = std::fs::read(dir.path().join("c.db")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret is never stored"
    );
}

#[test]
fn an_unknown_scope_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());

    let output = countersign(
        &url,
        &["token", "create", "--name", "tines", "--scope", "approve"],
    );

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown scope"));
}

#[test]
fn serve_names_every_missing_setting_at_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_countersign"))
        .arg("serve")
        .env_clear()
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for name in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_CHANNEL",
        "OP_CLIENT_ID",
        "OP_CLIENT_SECRET",
        "OP_ACCOUNT_ID",
        "COUNTERSIGN_POLICY",
    ] {
        assert!(stderr.contains(name), "{name} not named in {stderr}");
    }
}
