//! Running countersign: metrics, readiness, and logs that never hold a secret.

mod support;

use countersign::domain::Status;
use support::app::*;
use support::process::{self, World};
use support::slack_signing::{self, SIGNING_SECRET};

fn sample<'a>(metrics: &'a str, series: &str) -> Option<&'a str> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
}

#[tokio::test]
async fn metrics_change_after_a_proposals_life() {
    let app = spawn_app().await;
    let executed = "countersign_proposals{action=\"suspend\",status=\"executed\"}";
    assert_eq!(sample(&app.metrics().await, executed), Some("0"));

    let id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;

    let after = app.metrics().await;
    assert_eq!(sample(&after, executed), Some("1"));
    assert_eq!(
        sample(
            &after,
            "countersign_decision_seconds_count{action=\"suspend\",decision=\"approved\"}"
        ),
        Some("1")
    );
    assert_eq!(
        sample(
            &after,
            "countersign_execution_seconds_count{action=\"suspend\",status=\"executed\"}"
        ),
        Some("1")
    );
    assert_eq!(
        sample(
            &after,
            "countersign_external_call_seconds_count{service=\"onepassword\",endpoint=\"suspend\"}"
        ),
        Some("1")
    );
    assert!(after.contains(
        "countersign_external_call_seconds_count{service=\"slack\",endpoint=\"chat.postMessage\"}"
    ));
    assert!(after.contains("countersign_outbox_depth{lane=\"onepassword\"} 0"));
    assert!(!after.contains("alice"), "metrics never name a user");
}

#[tokio::test]
async fn readiness_reports_the_database_and_the_last_calls_out() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;

    let response = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "writable");
    assert_eq!(body["onepassword"]["ok"], true);
    assert_eq!(body["slack"]["ok"], true);
}

#[tokio::test]
async fn a_full_run_never_logs_a_secret() {
    let world = World::start().await;
    let server = world
        .serve_with("server", &[("RUST_LOG", "debug"), ("LOG_FORMAT", "json")])
        .await;
    let token = world.create_token().await;
    let id = server.propose_suspend_alice(&token).await;
    let card = world.card_ts().await;
    // A forged click: its expected signature must not be logged either.
    let payload = slack_signing::block_action(
        process::TEAM,
        process::BOB,
        "approve",
        &id,
        process::CHANNEL,
        &card,
        "http://127.0.0.1:9/",
    );
    let body = slack_signing::interaction_body(&payload);
    let now = slack_signing::now();
    let forged = world
        .http
        .post(format!("{}/slack/interactions", server.address))
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", "v0=0000")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    world.approve(&server, &id, &card).await;
    server.wait_for_status(&token, &id, "executed").await;
    // A SOAR's 1Password integration through the gateway: its secret and token stay out too.
    let (client, client_secret) = world.create_gateway_client("cloud-soar", "get-user").await;
    let soar =
        support::soar::Soar::new(&server.address, &world.op.version, &client, &client_secret);
    assert_eq!(soar.get(process::ALICE).await.status, 200);
    let gateway_token = soar.token().await;

    let logs = server.logs();
    let expected_signature = slack_signing::sign(SIGNING_SECRET, now, &body);
    let secrets = [
        support::fake_slack::FakeSlack::BOT_TOKEN,
        SIGNING_SECRET,
        support::fake_onepassword::FakeOnePassword::CLIENT_SECRET,
        token.as_str(),
        expected_signature.as_str(),
        client_secret.as_str(),
        gateway_token.as_str(),
    ];
    assert!(logs.lines().count() > 10, "the run logged: {logs}");
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret appears in the logs");
    }
    let executed = logs
        .lines()
        .find(|l| l.contains("\"executed\"") || l.contains("\"message\":\"executed\""))
        .expect("the executed line");
    assert!(
        executed.contains(&id),
        "the executed line names its proposal: {executed}"
    );
}

#[tokio::test]
async fn a_response_url_that_cannot_be_answered_is_never_logged() {
    let world = World::start().await;
    let server = world.serve_with("server", &[("LOG_FORMAT", "json")]).await;
    // Slack takes longer to take the answer than countersign waits.
    world
        .slack
        .stall_responses(std::time::Duration::from_secs(30));
    let response_url = world.slack.response_url("secret-hook-T0TEST-B0123-abcdef");
    let body = slack_signing::slash_command_body(
        process::TEAM,
        process::BOB,
        "/suspend",
        "alice@example.com Impossible travel then a vault export",
        process::CHANNEL,
        &response_url,
    );
    let answered = world.signed_post(&server, "/slack/commands", body).await;
    assert_eq!(answered.status(), 200);

    process::eventually("the failed answer to be logged", || {
        server.logs().contains("could not answer a slash command")
    })
    .await;

    let logs = server.logs();
    assert!(!logs.contains("secret-hook"), "the response_url was logged");
}

#[tokio::test]
async fn a_service_restarted_more_often_than_the_interval_still_writes_checkpoints() {
    let world = World::start().await;
    let interval = [("CHECKPOINT_INTERVAL_SECS", "2")];
    let mut first = world.serve_with("first", &interval).await;
    let token = world.create_token().await;
    first.propose_suspend_alice(&token).await;
    first.kill();
    let ledger = countersign::ledger::Ledger::connect(&world.database_url)
        .await
        .unwrap();
    let checkpoints = || async {
        let events = ledger.events(0, 10_000).await.unwrap();
        events
            .iter()
            .filter(|e| e.kind == "ledger.checkpoint")
            .count()
    };

    // Each run lives about half the interval, so none lives long enough to wait one out.
    let mut written = 0;
    for run in 0..8 {
        let mut server = world.serve_with(&format!("run{run}"), &interval).await;
        for _ in 0..10 {
            written = checkpoints().await;
            if written > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        server.kill();
        if written > 0 {
            break;
        }
    }

    assert!(written > 0, "no run ever wrote a checkpoint");
}
