//! Drift attribution from 1Password's Events API: audit events about a user's suspension or
//! reactivation name who made a change outside countersign, and confirm countersign's own.

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::domain::Status;
use serde_json::Value;
use support::app::*;
use support::fake_onepassword::{ConsoleActor, FakeOnePassword};

fn dana() -> ConsoleActor {
    ConsoleActor {
        uuid: "DANAUUIDAAAAAAAAAAAAAAAAAA".into(),
        name: "Dana".into(),
        email: "dana@example.com".into(),
        ip: "203.0.113.4".into(),
        country: "CA".into(),
        region: "Ontario".into(),
        city: "Toronto".into(),
        ..ConsoleActor::default()
    }
}

/// Polls the Events API often; the sweep off unless a test turns it on.
fn polling() -> Timing {
    Timing {
        events_every: Duration::from_millis(100),
        ..test_timing()
    }
}

fn sweeping_and_polling() -> Timing {
    Timing {
        drift_every: Some(Duration::from_millis(150)),
        ..polling()
    }
}

async fn app_with_events(timing: Timing) -> TestApp {
    spawn_app_with_events(&policy_with("", ""), timing).await
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<(Option<String>, String, Value)> {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.proposal_id, e.actor, e.payload))
        .collect()
}

async fn until_events(app: &TestApp, kind: &str, n: usize) -> Vec<(Option<String>, String, Value)> {
    for _ in 0..400 {
        let found = events_of(app, kind).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never {n} {kind}: {:?}", events_of(app, kind).await);
}

/// Alice suspended through countersign, so her reactivation undoes a containment.
async fn alice_suspended(app: &TestApp) -> String {
    let id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    id
}

#[tokio::test]
async fn countersigns_own_suspension_is_confirmed_never_drift() {
    let app = app_with_events(polling()).await;
    let id = alice_suspended(&app).await;

    let confirmed = until_events(&app, "execution.confirmed", 1).await;

    assert_eq!(confirmed[0].0.as_deref(), Some(id.as_str()));
    assert_eq!(
        confirmed[0].2["actor"]["uuid"],
        FakeOnePassword::SERVICE_ACCOUNT_UUID
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events_of(&app, "drift.detected").await.is_empty());
}

#[tokio::test]
async fn a_console_reactivation_is_drift_that_names_who_did_it() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;

    app.op.console_set_state(ALICE, "ACTIVE", dana());

    let drift = until_events(&app, "drift.detected", 1).await;
    let (_, actor, payload) = &drift[0];
    assert_eq!(actor, "1password:dana@example.com");
    assert_eq!(payload["to"], "ACTIVE");
    assert_eq!(payload["actor"]["name"], "Dana");
    assert_eq!(payload["actor"]["ip"], "203.0.113.4");
    assert_eq!(payload["actor"]["location"], "Toronto, Ontario, CA");
}

#[tokio::test]
async fn an_urgent_reactivation_is_announced_naming_the_console_user() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;

    app.op.console_set_state(ALICE, "ACTIVE", dana());

    app.eventually("the urgent announcement naming Dana", || {
        app.slack.top_level_messages().iter().any(|m| {
            let text = m.text.clone().unwrap_or_default();
            // As sent: mrkdwn escapes the angle brackets Slack shows.
            text.contains("reactivated in the 1Password console by Dana &lt;dana@example.com&gt; from 203.0.113.4")
        })
    })
    .await;
    let message = app
        .slack
        .top_level_messages()
        .into_iter()
        .find(|m| m.text.as_deref().unwrap_or("").contains("by Dana"))
        .unwrap();
    assert!(message
        .blocks
        .to_string()
        .contains("Propose suspension again"));
}

#[tokio::test]
async fn a_console_suspension_is_attributed_too() {
    let app = app_with_events(polling()).await;
    // countersign knows Alice is active once it has looked at her.
    app.propose_id(&suspend_alice()).await;

    app.op.console_set_state(ALICE, "SUSPENDED", dana());

    let drift = until_events(&app, "drift.detected", 1).await;
    assert_eq!(drift[0].2["to"], "SUSPENDED");
    assert_eq!(drift[0].2["actor"]["email"], "dana@example.com");
}

#[tokio::test]
async fn a_drift_the_sweep_found_first_is_attributed_once_not_recorded_twice() {
    // The sweep lists often; the poll waits long enough for the sweep to be first.
    let timing = Timing {
        events_every: Duration::from_millis(1500),
        ..sweeping_and_polling()
    };
    let app = app_with_events(timing).await;
    alice_suspended(&app).await;

    app.op.console_set_state(ALICE, "ACTIVE", dana());

    let attributed = until_events(&app, "drift.attributed", 1).await;
    let detected = events_of(&app, "drift.detected").await;
    assert_eq!(detected.len(), 1, "{detected:?}");
    assert_eq!(detected[0].1, "system", "the sweep recorded it");
    assert_eq!(attributed[0].2["actor"]["email"], "dana@example.com");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events_of(&app, "drift.detected").await.len(), 1);
}

#[tokio::test]
async fn a_drift_the_events_found_first_is_not_recorded_again_by_the_sweep() {
    let app = app_with_events(sweeping_and_polling()).await;
    alice_suspended(&app).await;
    // The sweep has a baseline.
    until_events(&app, "drift.baseline", 1).await;

    app.op.console_set_state(ALICE, "ACTIVE", dana());
    until_events(&app, "drift.detected", 1).await;

    // Several sweeps later, still one.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(events_of(&app, "drift.detected").await.len(), 1);
    assert!(events_of(&app, "drift.attributed").await.is_empty());
}

#[tokio::test]
async fn a_429_from_the_events_api_is_waited_out_and_nothing_is_lost() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;
    app.op.fail_next_events(2, 429, Some(1));

    app.op.console_set_state(ALICE, "ACTIVE", dana());

    until_events(&app, "drift.detected", 1).await;
    let asked = app.op.events_requests();
    assert!(asked >= 3, "asked again after the 429s: {asked}");
}

#[tokio::test]
async fn a_token_without_audit_events_is_named_and_nothing_is_polled() {
    let app = spawn_app_with_events_token(
        &policy_with("", ""),
        polling(),
        FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT,
    )
    .await;
    alice_suspended(&app).await;
    app.op.console_set_state(ALICE, "ACTIVE", dana());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let with_that_token = |path: &str| {
        app.op
            .events_request_log()
            .iter()
            .filter(|r| r.path.ends_with(path))
            .filter(|r| {
                r.authorization.as_deref()
                    == Some(&format!(
                        "Bearer {}",
                        FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT
                    ))
            })
            .count()
    };
    assert!(with_that_token("/introspect") >= 1, "the token was checked");
    assert_eq!(with_that_token("/auditevents"), 0);
    assert!(events_of(&app, "drift.detected").await.is_empty());
}

#[tokio::test]
async fn the_cursor_is_kept_in_the_ledger_so_a_restart_reads_on_from_it() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;
    until_events(&app, "execution.confirmed", 1).await;
    let again = app
        .restarted(
            &policy_with("", ""),
            polling(),
            Some(FakeOnePassword::EVENTS_TOKEN),
        )
        .await;

    again.op.console_set_state(ALICE, "ACTIVE", dana());

    until_events(&again, "drift.detected", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events_of(&again, "execution.confirmed").await.len(),
        1,
        "the suspension was not read twice"
    );
}

#[tokio::test]
async fn drift_lists_its_actor_in_the_api() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;
    app.op.console_set_state(ALICE, "ACTIVE", dana());
    until_events(&app, "drift.detected", 1).await;

    let token = app.token(&[countersign::ledger::Scope::AuditRead]).await;
    let page = app.get_json("/v1/drift", &token).await;

    assert_eq!(
        page["drift"][0]["attribution"]["email"], "dana@example.com",
        "{page}"
    );
    assert_eq!(
        page["drift"][0]["attribution"]["ip"], "203.0.113.4",
        "{page}"
    );
}

#[tokio::test]
async fn an_announcement_made_before_the_actor_was_known_is_edited_to_name_them() {
    let app = app_with_events(sweeping_and_polling()).await;
    alice_suspended(&app).await;
    until_events(&app, "execution.confirmed", 1).await;
    until_events(&app, "drift.baseline", 1).await;
    // 1Password's audit events lag: the sweep finds the change, and it is announced, first.
    app.op.fail_next_events(8, 503, None);

    app.op.console_set_state(ALICE, "ACTIVE", dana());

    app.eventually("the announcement, without its actor", || {
        app.slack.top_level_messages().iter().any(|m| {
            m.text
                .as_deref()
                .unwrap_or("")
                .contains("reactivated outside countersign")
        })
    })
    .await;
    until_events(&app, "drift.attributed", 1).await;
    app.eventually("the same message, naming Dana", || {
        app.slack
            .top_level_messages()
            .iter()
            .any(|m| m.text.as_deref().unwrap_or("").contains("by Dana"))
    })
    .await;
    let announcements = app
        .slack
        .top_level_messages()
        .into_iter()
        .filter(|m| m.text.as_deref().unwrap_or("").contains("was reactivated"))
        .count();
    assert_eq!(announcements, 1, "edited, not posted again");
}

#[tokio::test]
async fn approvals_drift_names_who_made_each_change() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;
    app.op.console_set_state(ALICE, "ACTIVE", dana());
    until_events(&app, "drift.detected", 1).await;

    let answer = app.command(BOB, "/approvals", "drift", "drift").await;

    let text = answer["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("by Dana &lt;dana@example.com&gt; from 203.0.113.4"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_csv_export_names_the_console_user_as_the_drifts_actor() {
    let app = app_with_events(polling()).await;
    alice_suspended(&app).await;
    app.op.console_set_state(ALICE, "ACTIVE", dana());
    until_events(&app, "drift.detected", 1).await;

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["ledger", "export", "--format", "csv"])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("the binary runs");

    let csv = String::from_utf8(output.stdout).unwrap();
    let drift = csv
        .lines()
        .find(|l| l.contains("drift.detected"))
        .expect("a drift row");
    assert!(drift.contains("1password:dana@example.com"), "{drift}");
    assert!(drift.contains(",reactivated,"), "{drift}");
}
