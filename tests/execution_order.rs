//! Execution that never undoes containment and always records what happened: newer decisions
//! win, containment wins over a pending restore, no header stops a lane, and the recorded
//! outcome is what 1Password did.

mod support;

use countersign::domain::{ProposalId, Status};
use serde_json::{json, Value};
use support::app::*;
use support::callback_receiver::CallbackReceiver;

const OSCAR: &str = "OSCARAAAAAAAAAAAAAAAAAAAAA";

fn about(mut body: Value, email: &str) -> Value {
    body["user"] = json!({ "email": email });
    body
}

fn with_callback(mut body: Value, receiver: &CallbackReceiver) -> Value {
    body["callback_url"] = json!(receiver.url);
    body
}

async fn proposal(app: &TestApp, id: &str) -> Value {
    let id = ProposalId::parse(id).unwrap();
    serde_json::to_value(app.ledger.proposal(id).await.unwrap().unwrap()).unwrap()
}

/// The payloads of `kind` events about proposal `id`, oldest first.
async fn events_of(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind && e.proposal_id.as_deref() == Some(id))
        .map(|e| e.payload)
        .collect()
}

async fn wait_for_event(app: &TestApp, id: &str, kind: &str) {
    for _ in 0..400 {
        if !events_of(app, id, kind).await.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no {kind} event for {id}");
}

/// The callbacks delivered about proposal `id`: their event names.
fn callbacks_about(receiver: &CallbackReceiver, id: &str) -> Vec<Value> {
    receiver
        .deliveries()
        .iter()
        .map(|d| serde_json::from_str::<Value>(&d.body).unwrap())
        .filter(|body| body["proposal"]["id"] == id)
        .collect()
}

async fn approve_restore(app: &TestApp, id: &str) {
    app.click(BOB, "approve", id).await;
    app.click(CAT, "approve", id).await;
}

// ---- 1. An older action never undoes a newer decision ----

#[tokio::test]
async fn a_restore_failing_transiently_is_superseded_by_a_suspend_approved_meanwhile() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    app.op.fail_action(MALLORY, "reactivate", 503, Some(2));
    let restore_id = app
        .propose_id(&with_callback(restore("mallory@example.com"), &receiver))
        .await;
    approve_restore(&app, &restore_id).await;
    wait_for_event(&app, &restore_id, "execution.attempt_failed").await;

    let suspend_id = app
        .propose_id(&about(suspend_alice(), "mallory@example.com"))
        .await;
    let reactivations_before_approval = app.op.mutation_count("reactivate");
    app.click(BOB, "approve", &suspend_id).await;

    app.wait_for_status(&suspend_id, Status::Executed).await;
    app.wait_for_status(&restore_id, Status::Superseded).await;
    assert_eq!(app.op.user_state(MALLORY).as_deref(), Some("SUSPENDED"));
    assert_eq!(
        app.op.mutation_count("reactivate"),
        reactivations_before_approval,
        "no :reactivate reached 1Password after the suspend was approved"
    );
    assert_eq!(
        proposal(&app, &restore_id).await["superseded_by"],
        suspend_id.as_str()
    );
    let superseded = events_of(&app, &restore_id, "proposal.superseded").await;
    assert_eq!(superseded[0]["superseded_by"], suspend_id.as_str());
    app.eventually("the superseded callback", || {
        callbacks_about(&receiver, &restore_id).iter().any(|c| {
            c["event"] == "superseded" && c["proposal"]["superseded_by"] == suspend_id.as_str()
        })
    })
    .await;
    app.card_shows(&restore_id, "Superseded").await;
}

#[tokio::test]
async fn a_failed_suspend_is_superseded_when_a_newer_restore_is_approved() {
    let app = spawn_app().await;
    app.op.fail_user(ALICE, 403, "permission denied");
    let suspend_id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &suspend_id).await;
    app.wait_for_status(&suspend_id, Status::Failed).await;
    app.op.clear_user_failure(ALICE);

    let restore_id = app.propose_id(&restore("alice@example.com")).await;
    app.click(CAT, "approve", &restore_id).await;
    app.click(DAN, "approve", &restore_id).await;

    app.wait_for_status(&suspend_id, Status::Superseded).await;
    assert_eq!(
        proposal(&app, &suspend_id).await["superseded_by"],
        restore_id.as_str()
    );
    app.click(BOB, "retry", &suspend_id).await;
    app.wait_for_status(&restore_id, Status::Executed).await;
    assert_eq!(app.status(&suspend_id).await, Status::Superseded);
    assert_eq!(
        app.op.mutation_count("suspend"),
        1,
        "only the first, refused attempt"
    );
}

// ---- 2. Containment wins over a pending restore ----

#[tokio::test]
async fn a_suspend_proposed_while_a_restore_is_pending_is_created_and_ends_the_restore() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let restore_id = app
        .propose_id(&with_callback(restore("mallory@example.com"), &receiver))
        .await;
    let token = app
        .token(&[countersign::ledger::Scope::ProposeSuspend])
        .await;

    let body = with_callback(about(suspend_alice(), "mallory@example.com"), &receiver);
    let response = app.propose_with(&token, &body).await;

    assert_eq!(response.status(), 201);
    let suspend: Value = response.json().await.unwrap();
    assert_eq!(app.status(&restore_id).await, Status::Denied);
    let ended = proposal(&app, &restore_id).await;
    assert_eq!(
        ended["denial"]["reason"],
        "new alert ldt:8f2c while the restore was pending"
    );
    assert_eq!(ended["denial"]["slack_user_id"], Value::Null);
    let denied = app.ledger.events(0, 1000).await.unwrap();
    let denial = denied
        .iter()
        .find(|e| {
            e.kind == "proposal.denied" && e.proposal_id.as_deref() == Some(restore_id.as_str())
        })
        .unwrap();
    assert_eq!(denial.actor, "system");
    app.card_shows(&restore_id, "Denied* by countersign").await;

    let suspend_id = suspend["id"].as_str().unwrap().to_owned();
    app.click(BOB, "approve", &suspend_id).await;
    app.wait_for_status(&suspend_id, Status::Executed).await;
    app.eventually("both callbacks", || {
        let restore_denied = callbacks_about(&receiver, &restore_id)
            .iter()
            .any(|c| c["event"] == "denied");
        let suspend_executed = callbacks_about(&receiver, &suspend_id)
            .iter()
            .any(|c| c["event"] == "executed");
        restore_denied && suspend_executed
    })
    .await;
}

#[tokio::test]
async fn a_restore_proposed_while_a_suspend_is_pending_is_refused_with_409() {
    let app = spawn_app().await;
    let suspend_id = app.propose_id(&suspend_alice()).await;
    let token = app
        .token(&[countersign::ledger::Scope::ProposeRestore])
        .await;

    let response = app
        .propose_with(&token, &restore("alice@example.com"))
        .await;

    assert_eq!(response.status(), 409);
    assert_eq!(app.status(&suspend_id).await, Status::Pending);
}

// ---- 3. No upstream header can stop a lane ----

#[tokio::test]
async fn a_retry_after_of_nine_trillion_seconds_never_stops_the_1password_lane() {
    let app = spawn_app().await;
    app.op
        .add_user(OSCAR, "oscar@example.com", "Oscar", "ACTIVE");
    let alice = app.propose_id(&suspend_alice()).await;
    // Past the last representable date (and within chrono's TimeDelta): added uncapped to the
    // clock it panicked the lane.
    app.op.fail_next(1, 503, Some(9_000_000_000_000));
    app.click(BOB, "approve", &alice).await;
    wait_for_event(&app, &alice, "execution.attempt_failed").await;

    let oscar = app
        .propose_id(&about(suspend_alice(), "oscar@example.com"))
        .await;
    app.click(BOB, "approve", &oscar).await;

    app.wait_for_status(&oscar, Status::Executed).await;
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["lanes_stopped"], json!([]));
    let run_after = outbox_rows(&app, &alice, "onepassword").await[0]
        .run_after
        .clone();
    let cap = countersign::ledger::timestamp(chrono::Utc::now() + chrono::Duration::seconds(301));
    assert!(
        run_after <= cap,
        "rescheduled at {run_after}, beyond the cap"
    );
}

struct OutboxRow {
    run_after: String,
    last_error: Option<String>,
    done: bool,
}

async fn outbox_rows(app: &TestApp, proposal: &str, lane: &str) -> Vec<OutboxRow> {
    use sqlx::Row;
    let pool = support::database::pool(&app.database_url).await;
    let rows = sqlx::query(
        "SELECT run_after, last_error, done_at FROM outbox
         WHERE proposal_id = $1 AND lane = $2 ORDER BY id",
    )
    .bind(proposal)
    .bind(lane)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| OutboxRow {
            run_after: r.get("run_after"),
            last_error: r.get("last_error"),
            done: r.get::<Option<String>, _>("done_at").is_some(),
        })
        .collect()
}

#[tokio::test]
async fn a_job_no_handler_can_read_is_set_aside_and_its_lane_keeps_running() {
    let app = spawn_app().await;
    let first = app.propose_id(&suspend_alice()).await;
    // A row of a kind this release does not know (a newer release wrote it, or a hand did).
    let pool = support::database::pool(&app.database_url).await;
    let now = countersign::ledger::timestamp(chrono::Utc::now());
    sqlx::query(
        "INSERT INTO outbox (proposal_id, lane, kind, payload, created_at, run_after)
         VALUES ($1, 'slack', 'announce', '{\"kind\":\"announce\"}', $2, $3)",
    )
    .bind(&first)
    .bind(&now)
    .bind(&now)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let second = app.propose_id(&restore("mallory@example.com")).await;

    app.card_ts(&second).await;
    let rows = outbox_rows(&app, &first, "slack").await;
    let unreadable = rows.last().unwrap();
    assert!(unreadable.done);
    assert!(
        unreadable
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("unreadable job"),
        "{:?}",
        unreadable.last_error
    );
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

// ---- 5. The recorded outcome is what happened ----

#[tokio::test]
async fn a_suspend_whose_answer_was_lost_is_retried_and_records_suspended() {
    let app = spawn_app().await;
    app.op.lose_next_mutation_answer(503);
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    let executed = proposal(&app, &id).await;
    assert_eq!(executed["execution"]["outcome"], "suspended");
    assert_eq!(executed["execution"]["attempts"], 2);
    assert_eq!(app.op.mutation_count("suspend"), 1);
    let started: Vec<_> = events_of(&app, &id, "execution.started")
        .await
        .iter()
        .map(|p| p["attempt"].clone())
        .collect();
    assert_eq!(started, [json!(1), json!(2)]);
    assert!(events_of(&app, &id, "execution.failed").await.is_empty());
}

#[tokio::test]
async fn the_suspends_own_answer_is_the_outcome_however_the_reads_after_it_fail() {
    let app = spawn_app().await;
    app.op.fail_reads_after_mutation(ALICE, 1000, 503, Some(0));
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    let executed = proposal(&app, &id).await;
    assert_eq!(executed["execution"]["outcome"], "suspended");
    assert_eq!(executed["execution"]["attempts"], 1);
    assert_eq!(app.op.mutation_count("suspend"), 1);
    assert!(events_of(&app, &id, "execution.failed").await.is_empty());
}

#[tokio::test]
async fn a_suspend_approved_after_a_restore_stamped_by_a_fast_clock_is_still_the_newer_decision() {
    let app = spawn_app().await;
    // Mallory was restored, the approval recorded by a replica whose clock runs 5 minutes fast.
    let ahead = app.restore_mallory_on_a_fast_clock().await;

    // A new alert: a suspension is approved, on a replica with a true clock.
    let mut body = suspend_alice();
    body["user"]["email"] = "mallory@example.com".into();
    let suspend_id = app.propose_id(&body).await;
    app.click(BOB, "approve", &suspend_id).await;

    // Then the containment happens: the suspension is not taken for the older decision.
    app.wait_for_status(&suspend_id, Status::Executed).await;
    assert_eq!(app.op.user_state(MALLORY).as_deref(), Some("SUSPENDED"));
    let approved = proposal(&app, &suspend_id).await;
    let at: chrono::DateTime<chrono::Utc> = approved["approvals"][0]["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at > ahead, "the approval at {at} is ordered before {ahead}");
}
