//! Incident scale: actions for different users run in parallel, never two for one user, in
//! approval order; 1Password's 429 eases the pace; in a burst cards come first.

mod support;

use std::time::Duration;

use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;

fn user_id(n: usize) -> String {
    format!("BURST{n:021}")
}

fn suspend_of(email: &str) -> Value {
    let mut body = suspend_alice();
    body["user"] = json!({ "email": email });
    body
}

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The seq of the first event of `kind` about proposal `id`.
async fn seq_of(app: &TestApp, id: &str, kind: &str) -> i64 {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .iter()
        .find(|e| e.kind == kind && e.proposal_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no {kind} for {id}"))
        .seq
}

#[tokio::test]
async fn four_users_suspensions_are_in_flight_at_once_with_concurrency_four() {
    let app = spawn_app_concurrent(4).await;
    let mut ids = vec![];
    for n in 0..4 {
        let email = format!("burst{n}@example.com");
        app.op.add_user(&user_id(n), &email, "Burst", "ACTIVE");
        ids.push(app.propose_id(&suspend_of(&email)).await);
    }
    app.op.set_delay(Duration::from_millis(400));

    for id in &ids {
        app.click(BOB, "approve", id).await;
    }

    for id in &ids {
        app.wait_for_status(id, Status::Executed).await;
    }
    assert_eq!(
        app.op.most_in_flight(),
        4,
        "four actions at once, never more"
    );
    assert_eq!(app.op.most_in_flight_for_one_user(), 1);
}

#[tokio::test]
async fn two_actions_for_one_user_never_overlap_and_run_in_approval_order() {
    let app = spawn_app_concurrent(4).await;
    let suspend = app.propose_id(&suspend_alice()).await;
    app.op.set_delay(Duration::from_millis(400));
    app.click(BOB, "approve", &suspend).await;
    app.wait_for_status(&suspend, Status::Executing).await;

    // While the suspend's calls are held, a restore of the same user is approved.
    let restore = app.propose_id(&restore("alice@example.com")).await;
    app.click(CAT, "approve", &restore).await;
    app.click(DAN, "approve", &restore).await;

    app.wait_for_status(&suspend, Status::Executed).await;
    app.wait_for_status(&restore, Status::Executed).await;
    let suspended = seq_of(&app, &suspend, "execution.succeeded").await;
    let restore_started = seq_of(&app, &restore, "execution.started").await;
    assert!(
        restore_started > suspended,
        "the restore started only after the suspend ended"
    );
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("ACTIVE"));
}

#[tokio::test]
async fn a_429_from_1password_halves_the_concurrency() {
    let app = spawn_app_concurrent(8).await;
    let id = app.propose_id(&suspend_alice()).await;
    assert!(metrics(&app)
        .await
        .contains("countersign_onepassword_concurrency 8"));
    app.op.fail_next(1, 429, Some(0));

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    let after = metrics(&app).await;
    assert!(
        after.contains("countersign_onepassword_concurrency 4"),
        "{after}"
    );
}
