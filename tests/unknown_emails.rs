//! Unknown emails cost 1Password nothing beyond one listing a minute: a proposal about an
//! email 1Password does not know is answered from the last listing while it is fresh, so a
//! stream of them cannot make countersign walk the whole account again and again.

mod support;

use std::time::{Duration, Instant};

use countersign::config::Timing;
use countersign::ledger::Scope;
use countersign::sandbox::onepassword::FakeOnePassword;
use serde_json::{json, Value};
use support::app::*;

/// The timing of the suite, with unknown emails answered from a listing this young.
fn relisting_misses_every(every: Duration) -> Timing {
    Timing {
        op_miss_relist_every: every,
        ..test_timing()
    }
}

/// Walks of the whole account: first pages of "List users" (a page token continues a walk).
fn listing_walks(op: &FakeOnePassword) -> usize {
    let users = format!(
        "/{}/accounts/{}/users",
        op.version,
        FakeOnePassword::ACCOUNT_ID
    );
    op.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == users)
        .filter(|r| {
            !r.query
                .as_deref()
                .unwrap_or_default()
                .contains("page_token")
        })
        .count()
}

/// Reads of the account's users of any kind: listings and single users.
fn user_reads(op: &FakeOnePassword) -> usize {
    let users = format!("/{}/accounts/", op.version);
    op.requests()
        .iter()
        .filter(|r| r.path.starts_with(&users))
        .count()
}

fn suspend(email: &str) -> Value {
    let mut body = suspend_alice();
    body["user"] = json!({ "email": email });
    body
}

async fn propose_token(app: &TestApp) -> String {
    app.token(&[Scope::ProposeSuspend]).await
}

/// Proposes suspending `email` and asserts the API answers that 1Password has no such user.
async fn assert_unknown(app: &TestApp, token: &str, email: &str) {
    let response = app.propose_with(token, &suspend(email)).await;
    assert_eq!(response.status(), 422, "{email} was not refused as unknown");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["pointer"], "/user/email",
        "{problem:#}"
    );
}

#[tokio::test]
async fn a_stream_of_unknown_emails_lists_the_account_once() {
    let app = spawn_app_with(
        &policy_with("", ""),
        relisting_misses_every(Timing::default().op_miss_relist_every),
    )
    .await;
    let token = propose_token(&app).await;

    for n in 0..20 {
        assert_unknown(&app, &token, &format!("stranger{n}@example.com")).await;
    }

    assert_eq!(listing_walks(&app.op), 1);
    assert_eq!(user_reads(&app.op), 1, "only the one listing read any user");
}

#[tokio::test]
async fn a_burst_of_concurrent_unknown_emails_lists_the_account_once() {
    let app = spawn_app_with(
        &policy_with("", ""),
        relisting_misses_every(Timing::default().op_miss_relist_every),
    )
    .await;
    let token = propose_token(&app).await;

    let burst = (0..20).map(|n| {
        let (app, token) = (&app, &token);
        async move { assert_unknown(app, token, &format!("stranger{n}@example.com")).await }
    });
    futures_util::future::join_all(burst).await;

    assert_eq!(listing_walks(&app.op), 1);
}

#[tokio::test]
async fn the_drift_sweeps_listing_answers_unknown_emails_too() {
    let timing = Timing {
        // The sweep lists once at start, and not again within the test.
        drift_every: Some(Duration::from_secs(3600)),
        ..relisting_misses_every(Timing::default().op_miss_relist_every)
    };
    let app = spawn_app_with(&policy_with("", ""), timing).await;
    app.eventually("the drift sweep's listing", || listing_walks(&app.op) == 1)
        .await;
    let token = propose_token(&app).await;

    for n in 0..5 {
        assert_unknown(&app, &token, &format!("stranger{n}@example.com")).await;
    }

    assert_eq!(listing_walks(&app.op), 1);
}

#[tokio::test]
async fn a_user_added_to_1password_after_a_miss_is_found_once_the_interval_has_passed() {
    let every = Duration::from_secs(2);
    let app = spawn_app_with(&policy_with("", ""), relisting_misses_every(every)).await;
    let token = propose_token(&app).await;
    let listed = Instant::now();
    assert_unknown(&app, &token, "newcomer@example.com").await;

    app.op.add_user(
        "NEWCOMERAAAAAAAAAAAAAAAAAA",
        "newcomer@example.com",
        "Newcomer",
        "ACTIVE",
    );
    // Within the interval, the miss stands…
    assert_unknown(&app, &token, "newcomer@example.com").await;
    assert!(listed.elapsed() < every, "the machine was too slow to tell");
    tokio::time::sleep(every.saturating_sub(listed.elapsed()) + Duration::from_millis(100)).await;

    // …and after it, 1Password is asked again and the newcomer is found.
    let response = app
        .propose_with(&token, &suspend("newcomer@example.com"))
        .await;
    assert_eq!(response.status(), 201, "the newcomer was not found");
    let proposal: Value = response.json().await.unwrap();
    assert_eq!(proposal["target"]["id"], "NEWCOMERAAAAAAAAAAAAAAAAAA");
    assert_eq!(listing_walks(&app.op), 2);
}
