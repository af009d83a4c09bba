//! `countersign gateway client create|list|revoke`, run as an operator would, and the
//! credentials it prints used by an integration.

mod support;

use tokio::process::Command;

use serde_json::Value;
use support::app::*;
use support::soar::Soar;

/// Runs the CLI without blocking the test's runtime, which also runs the app: an app
/// transaction in flight must be able to commit while the CLI waits for the write lock.
async fn countersign(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("LOG_FORMAT", "pretty")
        .output()
        .await
        .expect("the binary runs")
}

async fn create(app: &TestApp, name: &str, permissions: &[&str]) -> std::process::Output {
    let mut args = vec!["gateway", "client", "create", "--name", name];
    for permission in permissions {
        args.extend(["--permission", permission]);
    }
    countersign(&app.database_url, &args).await
}

#[tokio::test]
async fn create_prints_only_the_client_id_and_secret_as_json_and_they_get_a_token() {
    let app = spawn_app().await;

    let output = create(&app, "sumo-cloud-soar", &["list-users", "suspend-users"]).await;

    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    let keys: Vec<_> = printed.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["client_id", "client_secret"]);
    let soar = Soar::new(
        &app.address,
        &app.op.version,
        printed["client_id"].as_str().unwrap(),
        printed["client_secret"].as_str().unwrap(),
    );
    assert_eq!(soar.list(&[]).await.status, 200);
    assert_eq!(soar.get(ALICE).await.status, 403, "get-user was not given");
}

#[tokio::test]
async fn the_secret_is_stored_hashed_and_never_listed() {
    let app = spawn_app().await;
    let output = create(&app, "sumo-cloud-soar", &["suspend-users"]).await;
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let secret = printed["client_secret"].as_str().unwrap();

    let list = countersign(&app.database_url, &["gateway", "client", "list"]).await;

    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("sumo-cloud-soar") && listed.contains("suspend-users"));
    assert!(!listed.contains(secret));
    let pool = support::database::pool(&app.database_url).await;
    let stored: String = sqlx::query_scalar("SELECT secret_hash FROM gateway_clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(stored, secret);
    let events = app.ledger.events(0, 100).await.unwrap();
    assert!(events
        .iter()
        .all(|e| !e.payload.to_string().contains(secret)));
}

#[tokio::test]
async fn an_unknown_permission_is_refused_and_nothing_is_created() {
    let app = spawn_app().await;

    let output = create(&app, "sumo-cloud-soar", &["delete-users"]).await;

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("list-users"));
    assert!(output.stdout.is_empty());
    assert!(app.ledger.gateway_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_name_an_api_token_already_has_is_refused() {
    let app = spawn_app().await;
    app.token_named("tines", &[countersign::ledger::Scope::ProposeSuspend])
        .await;

    let output = create(&app, "tines", &["suspend-users"]).await;

    assert_eq!(output.status.code(), Some(1));
    assert!(app.ledger.gateway_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn revoke_ends_the_client_and_is_a_ledger_event() {
    let app = spawn_app().await;
    let output = create(&app, "sumo-cloud-soar", &["suspend-users"]).await;
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = printed["client_id"].as_str().unwrap();

    let revoked = countersign(&app.database_url, &["gateway", "client", "revoke", id]).await;

    assert!(revoked.status.success(), "{revoked:?}");
    let clients = app.ledger.gateway_clients().await.unwrap();
    assert!(clients[0].revoked_at.is_some());
    let kinds = app.event_kinds().await;
    assert!(
        kinds.contains(&"gateway.client_revoked".to_owned()),
        "{kinds:?}"
    );
    let again = countersign(&app.database_url, &["gateway", "client", "revoke", id]).await;
    assert_eq!(again.status.code(), Some(1));
}
