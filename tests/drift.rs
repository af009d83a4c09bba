//! Drift watch: suspensions and reactivations made outside countersign become evidence, and
//! an account countersign suspended coming back is announced at once.

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::domain::Status;
use countersign::ledger::Scope;
use serde_json::Value;
use support::app::*;
use support::slack_signing;

fn sweeping() -> Timing {
    Timing {
        drift_every: Some(Duration::from_millis(100)),
        ..test_timing()
    }
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            let mut payload = e.payload;
            payload["seq"] = e.seq.into();
            payload
        })
        .collect()
}

async fn wait_for_events(app: &TestApp, kind: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let found = events_of(app, kind).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} {kind} events");
}

/// Lets a few more sweeps run.
async fn a_few_sweeps() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

fn lists(app: &TestApp) -> usize {
    app.op
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/users"))
        .count()
}

#[tokio::test]
async fn the_first_sweep_on_a_fresh_ledger_records_one_baseline() {
    let app = spawn_app_with(&policy_with("", ""), sweeping()).await;

    let baseline = wait_for_events(&app, "drift.baseline", 1).await;
    a_few_sweeps().await;

    assert_eq!(events_of(&app, "drift.baseline").await.len(), 1);
    assert_eq!(baseline[0]["users"], 2);
    assert_eq!(baseline[0]["digest"].as_str().unwrap().len(), 64);
    assert!(events_of(&app, "drift.detected").await.is_empty());
}

#[tokio::test]
async fn a_reactivation_in_the_console_undoing_countersigns_suspension_is_announced_once_and_can_be_undone(
) {
    let app = spawn_app_with(&policy_with("", ""), sweeping()).await;
    wait_for_events(&app, "drift.baseline", 1).await;
    let suspension = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &suspension).await;
    app.wait_for_status(&suspension, Status::Executed).await;
    a_few_sweeps().await;

    // An owner reactivates Alice in the 1Password console.
    app.op.set_state(ALICE, "ACTIVE");

    let drift = wait_for_events(&app, "drift.detected", 1).await;
    assert_eq!(drift[0]["from"], "SUSPENDED");
    assert_eq!(drift[0]["to"], "ACTIVE");
    assert_eq!(drift[0]["last_proposal"]["id"], suspension.as_str());
    app.eventually("the urgent message", || {
        app.slack
            .top_level_messages()
            .iter()
            .any(|m| m.blocks.to_string().contains("Propose suspension again"))
    })
    .await;
    a_few_sweeps().await;
    assert_eq!(
        events_of(&app, "drift.detected").await.len(),
        1,
        "seen again, not recorded again"
    );
    let announcements: Vec<_> = app
        .slack
        .top_level_messages()
        .into_iter()
        .filter(|m| m.blocks.to_string().contains("Propose suspension again"))
        .collect();
    assert_eq!(announcements.len(), 1, "announced once");

    // An approver clicks the button: a normal suspend proposal, which executes.
    let seq = drift[0]["seq"].to_string();
    let payload = slack_signing::block_action(
        TEAM,
        CAT,
        "propose_suspension_again",
        &seq,
        CHANNEL,
        &announcements[0].ts,
        &app.slack.response_url("drift"),
    );
    assert_eq!(app.interact(&payload).await.status(), 200);
    app.eventually("Alice suspended again", || {
        app.op.user_state(ALICE).as_deref() == Some("SUSPENDED")
    })
    .await;
    let proposals = app
        .ledger
        .proposals(&countersign::ledger::ProposalQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let again = &proposals[0];
    assert_ne!(again.id.to_string(), suspension);
    assert_eq!(
        again.source.alert_id.as_deref(),
        Some(format!("drift:{seq}").as_str())
    );
}

#[tokio::test]
async fn a_suspension_in_the_console_goes_to_the_audit_channel_and_the_api() {
    let app = spawn_app_with(&policy_with("", ""), sweeping()).await;
    wait_for_events(&app, "drift.baseline", 1).await;

    app.op.set_state(ALICE, "SUSPENDED");

    let drift = wait_for_events(&app, "drift.detected", 1).await;
    assert_eq!(drift[0]["to"], "SUSPENDED");
    assert_eq!(drift[0]["last_proposal"], Value::Null);
    app.eventually("the audit message", || {
        app.slack.messages().iter().any(|m| {
            m.channel == AUDIT_CHANNEL && m.text.as_deref().unwrap_or_default().contains("Drift")
        })
    })
    .await;
    assert!(
        app.slack
            .top_level_messages()
            .iter()
            .all(|m| m.channel != CHANNEL),
        "no card"
    );
    let token = app.token(&[Scope::AuditRead]).await;
    let listed: Value = app
        .get_json("/v1/drift?since=2020-01-01T00:00:00Z", &token)
        .await;
    assert_eq!(listed["drift"][0]["payload"]["user_id"], ALICE);
    assert!(app
        .metrics()
        .await
        .contains("countersign_drift_detected{direction=\"suspended\"} 1"));
    let answer = app.command(BOB, "/approvals", "drift", "list").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("alice@example.com"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_user_countersign_is_suspending_is_never_drift_even_between_the_call_and_the_record() {
    let app = spawn_app_with(&policy_with("", ""), sweeping()).await;
    wait_for_events(&app, "drift.baseline", 1).await;
    let id = app.propose_id(&suspend_alice()).await;
    // 1Password acts at once and answers a second later: sweeps see SUSPENDED before
    // countersign has recorded its own suspension.
    app.op.answer_mutations_after(Duration::from_secs(1));

    app.click(BOB, "approve", &id).await;
    app.eventually("1Password to suspend Alice", || {
        app.op.user_state(ALICE).as_deref() == Some("SUSPENDED")
    })
    .await;
    let lists_while_in_flight = lists(&app);
    app.wait_for_status(&id, Status::Executed).await;
    a_few_sweeps().await;

    assert!(lists(&app) > lists_while_in_flight, "sweeps ran meanwhile");
    assert!(events_of(&app, "drift.detected").await.is_empty());
}

#[tokio::test]
async fn with_the_interval_at_zero_no_sweep_runs() {
    let app = spawn_app().await;
    app.propose_id(&suspend_alice()).await;

    a_few_sweeps().await;

    assert_eq!(lists(&app), 1, "only intake's email lookup listed users");
    assert!(events_of(&app, "drift.baseline").await.is_empty());
}

#[tokio::test]
async fn two_replicas_sweeping_one_ledger_record_each_drift_once() {
    use support::process::World;
    let world = World::start().await;
    let every = [("DRIFT_INTERVAL", "1s")];
    let _a = world.serve_with("a", &every).await;
    let _b = world.serve_with("b", &every).await;
    let ledger = countersign::ledger::Ledger::connect(&world.database_url)
        .await
        .unwrap();
    let count = |kind: &'static str| {
        let ledger = ledger.clone();
        async move {
            let events = ledger.events(0, 10_000).await.unwrap();
            events.iter().filter(|e| e.kind == kind).count()
        }
    };
    for _ in 0..200 {
        if count("drift.baseline").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    world.op.set_state(support::process::ALICE, "SUSPENDED");
    for _ in 0..200 {
        if count("drift.detected").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both replicas sweep a few more times.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(count("drift.baseline").await, 1);
    assert_eq!(count("drift.detected").await, 1);
}
