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
    assert!(app
        .metrics()
        .await
        .contains("countersign_onepassword_concurrency 8"));
    app.op.fail_next(1, 429, Some(0));

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    let after = app.metrics().await;
    assert!(
        after.contains("countersign_onepassword_concurrency 4"),
        "{after}"
    );
}

/// A further report: another alert (one repeating an alert the proposal holds adds nothing).
fn with_reason(mut body: Value, reason: &str) -> Value {
    body["reason"] = json!(reason);
    body["source"]["alert_id"] = json!(format!("ldt:{reason}"));
    body
}

#[tokio::test]
async fn in_a_burst_new_cards_are_posted_before_thread_replies() {
    let app = spawn_app().await;
    let first = app.propose_id(&suspend_alice()).await;
    let first_card = app.card_ts(&first).await;
    // Slack holds the lane on one reply for three seconds (429, Retry-After 3)…
    app.slack.rate_limit_next("chat.postMessage", 1, 3);
    app.propose_unsettled(&with_reason(suspend_alice(), "A second report about Alice"))
        .await;
    // …while more reports and new proposals queue behind it.
    app.propose_unsettled(&with_reason(suspend_alice(), "A third report about Alice"))
        .await;
    let mut others = vec![];
    for n in 0..3 {
        let email = format!("burst{n}@example.com");
        app.op.add_user(&user_id(n), &email, "Burst", "ACTIVE");
        others.push(app.propose_unsettled(&suspend_of(&email)).await);
    }

    for id in &others {
        app.card_ts(id).await;
    }
    app.eventually("the third report's reply", || {
        app.slack.thread_replies(&first_card).iter().any(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("third report")
        })
    })
    .await;
    let posted = app.slack.messages();
    let third_reply = posted
        .iter()
        .position(|m| {
            m.text
                .as_deref()
                .unwrap_or_default()
                .contains("third report")
        })
        .unwrap();
    let last_card = posted.iter().rposition(|m| m.thread_ts.is_none()).unwrap();
    assert!(
        last_card < third_reply,
        "every new card went out before the queued reply"
    );
}

#[tokio::test]
async fn a_burst_of_cards_is_paced_to_slacks_limit_and_never_draws_a_429() {
    let timing = countersign::config::Timing {
        slack_post_every: Duration::from_millis(50),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with("", ""), timing).await;
    app.slack.limit_posts(Duration::from_millis(30), 3);
    let mut ids = vec![];
    for n in 0..12 {
        let email = format!("burst{n}@example.com");
        app.op.add_user(&user_id(n), &email, "Burst", "ACTIVE");
        ids.push(app.propose_unsettled(&suspend_of(&email)).await);
    }

    for id in &ids {
        app.card_ts(id).await;
    }

    assert_eq!(app.slack.top_level_messages().len(), 12, "every card once");
    assert_eq!(app.slack.posts_refused(), 0, "no 429 from Slack");
}
