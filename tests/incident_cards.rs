//! Incident cards: suspensions that wait for cards faster than Slack lets us post share
//! incident cards, a row each, decided row by row or all at once with "Approve all".

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;

fn grouping() -> Timing {
    Timing {
        incident_threshold: 4,
        ..test_timing()
    }
}

async fn grouping_app() -> TestApp {
    spawn_app_with(PROTECTING_DAVE, grouping()).await
}

const PROTECTING_DAVE: &str = r#"
protected = ["dave@example.com"]
[approvers]
users = ["U0BOB", "U0CAT", "U0DAN", "U0ALICE", "U0NEMO"]
[suspend]
approvals = 1
ttl = "30m"
[restore]
approvals = 2
ttl = "24h"
step_up = "none"
"#;

fn user_id(n: usize) -> String {
    format!("WAVE{n:022}")
}

fn email(n: usize) -> String {
    format!("wave{n}@example.com")
}

fn suspension(email: &str, alert: Option<&str>) -> Value {
    let mut source =
        json!({"platform": "okta", "rule": "credential-stuffing", "confidence": "high"});
    if let Some(alert) = alert {
        source["alert_id"] = json!(alert);
    }
    json!({"action": "suspend", "user": {"email": email}, "reason": "Password spray from a known botnet", "source": source})
}

/// Proposes the suspension of `n` users (from `first`) while Slack refuses every post, so they
/// all wait for cards at once, as a wave does against Slack's posting limit; then lets Slack
/// answer. Returns the proposal ids in order.
async fn wave(
    app: &TestApp,
    first: usize,
    n: usize,
    alert: impl Fn(usize) -> Option<String>,
) -> Vec<String> {
    app.slack.fail_method("chat.postMessage", 500);
    let mut ids = vec![];
    for k in first..first + n {
        app.op
            .add_user(&user_id(k), &email(k), &format!("Wave {k}"), "ACTIVE");
        ids.push(
            app.propose_unsettled(&suspension(&email(k), alert(k).as_deref()))
                .await,
        );
    }
    seated(app, &ids).await;
    app.slack.clear_failure("chat.postMessage");
    ids
}

/// Waits until every proposal sits on an incident card.
async fn seated(app: &TestApp, ids: &[String]) {
    for _ in 0..400 {
        let mut all = true;
        for id in ids {
            all &= app.proposal(id).await.incident.is_some();
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the wave was never seated on incident cards");
}

/// Waits until the ledger records `proposal.escalated` for `id`.
async fn escalated(app: &TestApp, id: &str) {
    for _ in 0..400 {
        let events = app.ledger.events(0, 100_000).await.unwrap();
        if events
            .iter()
            .any(|e| e.kind == "proposal.escalated" && e.proposal_id.as_deref() == Some(id))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} was never escalated");
}

/// The payloads of the ledger's events of `kind`, in order.
async fn events_of_kind(app: &TestApp, kind: &str) -> Vec<Value> {
    app.ledger
        .events(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.payload)
        .collect()
}

fn no_alert(_: usize) -> Option<String> {
    None
}

fn block_count(message: &support::fake_slack::PostedMessage) -> usize {
    message.blocks.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_wave_above_the_threshold_is_posted_as_one_incident_card() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 10, no_alert).await;

    let card = app.card_ts(&ids[0]).await;
    for id in &ids {
        assert_eq!(app.card_ts(id).await, card, "every row is on the one card");
    }
    app.eventually("the card to show every row", || {
        let message = app.slack.message(CHANNEL, &card).unwrap();
        message.blocks.to_string().contains("wave9@example.com")
    })
    .await;
    assert_eq!(
        app.slack.top_level_messages().len(),
        1,
        "one message for ten proposals"
    );
    let text = app
        .slack
        .message(CHANNEL, &card)
        .unwrap()
        .text
        .unwrap_or_default();
    assert!(text.contains("Incident: 10 suspensions proposed"), "{text}");
}

#[tokio::test]
async fn below_the_threshold_each_proposal_has_its_own_card() {
    let app = grouping_app().await;
    app.slack.fail_method("chat.postMessage", 500);
    let mut ids = vec![];
    for k in 0..3 {
        app.op.add_user(&user_id(k), &email(k), "Wave", "ACTIVE");
        ids.push(app.propose_unsettled(&suspension(&email(k), None)).await);
    }
    app.slack.clear_failure("chat.postMessage");

    let mut cards = vec![];
    for id in &ids {
        cards.push(app.card_ts(id).await);
        assert!(app.proposal(id).await.incident.is_none());
    }
    cards.dedup();
    assert_eq!(cards.len(), 3);
}

#[tokio::test]
async fn proposals_sharing_an_alert_are_grouped_apart_from_those_that_arrived_with_them() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 10, |k| {
        Some(if k < 5 {
            "ALERT-SHARED".into()
        } else {
            format!("ALERT-{k}")
        })
    })
    .await;

    let shared = app.proposal(&ids[0]).await.incident.unwrap().incident;
    let arrived = app.proposal(&ids[5]).await.incident.unwrap().incident;
    assert_ne!(shared, arrived);
    for id in &ids[..5] {
        assert_eq!(app.proposal(id).await.incident.unwrap().incident, shared);
    }
    for id in &ids[5..] {
        assert_eq!(app.proposal(id).await.incident.unwrap().incident, arrived);
    }
}

#[tokio::test]
async fn restores_and_protected_users_are_never_grouped() {
    let app = grouping_app().await;
    app.op.add_user(
        "DAVEAAAAAAAAAAAAAAAAAAAAAA",
        "dave@example.com",
        "Dave",
        "ACTIVE",
    );
    app.slack.fail_method("chat.postMessage", 500);
    let protected = app
        .propose_unsettled(&suspension("dave@example.com", None))
        .await;
    let restore = app.propose_unsettled(&restore("mallory@example.com")).await;
    let ids = wave(&app, 0, 6, no_alert).await;

    assert!(app.proposal(&protected).await.incident.is_none());
    assert!(app.proposal(&restore).await.incident.is_none());
    let own = app.card_ts(&protected).await;
    assert_ne!(own, app.card_ts(&ids[0]).await);
    assert_ne!(app.card_ts(&restore).await, own);
}

#[tokio::test]
async fn a_200_proposal_wave_makes_valid_cards_each_under_50_blocks() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 200, no_alert).await;

    let mut cards = std::collections::BTreeSet::new();
    for id in &ids {
        cards.insert(app.card_ts(id).await);
    }
    assert_eq!(cards.len(), 5, "40 rows a card");
    for card in &cards {
        let message = app.slack.message(CHANNEL, card).unwrap();
        assert!(
            block_count(&message) <= 50,
            "{} blocks",
            block_count(&message)
        );
    }
}

#[tokio::test]
async fn a_later_proposal_joins_the_incident_card_by_an_update() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 5, no_alert).await;
    let card = app.card_ts(&ids[0]).await;

    app.op.add_user(&user_id(9), &email(9), "Late", "ACTIVE");
    let late = app.propose_id(&suspension(&email(9), None)).await;

    assert_eq!(app.card_ts(&late).await, card);
    app.eventually("the card to show the late row", || {
        app.slack
            .message(CHANNEL, &card)
            .unwrap()
            .blocks
            .to_string()
            .contains("wave9@example.com")
    })
    .await;
    assert_eq!(app.slack.top_level_messages().len(), 1);
}

#[tokio::test]
async fn approve_all_approves_every_pending_row_and_the_card_sums_up_the_outcomes() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 8, no_alert).await;
    let card = app.card_ts(&ids[0]).await;
    app.card_shows(&ids[0], "Approve all 8 suspensions").await;

    app.approve_all(BOB, &card).await;

    for id in &ids {
        app.wait_for_status(id, Status::Executed).await;
    }
    app.eventually("the card to sum up", || {
        app.slack
            .message(CHANNEL, &card)
            .unwrap()
            .text
            .unwrap_or_default()
            .contains("All decided: 8 suspended")
    })
    .await;
    app.eventually("the clicker to hear what was approved", || {
        app.ephemerals_to(BOB)
            .iter()
            .any(|t| t.contains("You approved 8 of the 8"))
    })
    .await;
}

#[tokio::test]
async fn approve_all_leaves_the_clickers_own_account_and_says_why() {
    let app = grouping_app().await;
    // Alice approves, and is also one of the wave's users.
    app.slack.fail_method("chat.postMessage", 500);
    let own = app
        .propose_unsettled(&suspension("alice@example.com", None))
        .await;
    let mut ids = wave(&app, 0, 5, no_alert).await;
    ids.push(own.clone());
    let card = app.card_ts(&own).await;
    app.card_shows(&own, "Approve all 6 suspensions").await;

    app.approve_all(ALICE_SLACK, &card).await;

    app.eventually("the answer naming the row left", || {
        app.ephemerals_to(ALICE_SLACK).iter().any(|t| {
            t.contains("You approved 5 of the 6")
                && t.contains("alice@example.com")
                && t.contains("your own account")
        })
    })
    .await;
    assert_eq!(app.status(&own).await, Status::Pending);
}

#[tokio::test]
async fn a_row_decided_alone_is_left_by_a_later_approve_all() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 5, no_alert).await;
    let card = app.card_ts(&ids[0]).await;

    app.choose_on_row(CAT, "deny", &ids[2]).await;
    app.submit_denial(CAT, &ids[2], "A known test account")
        .await;
    app.wait_for_status(&ids[2], Status::Denied).await;
    app.approve_all(BOB, &card).await;

    for (k, id) in ids.iter().enumerate() {
        let expected = if k == 2 {
            Status::Denied
        } else {
            Status::Executed
        };
        app.wait_for_status(id, expected).await;
    }
    let approvals = events_of_kind(&app, "approval.recorded").await;
    assert_eq!(approvals.len(), 4, "the denied row got no approval");
}

#[tokio::test]
async fn a_row_menu_approves_that_row_alone() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 5, no_alert).await;

    app.choose_on_row(BOB, "approve", &ids[1]).await;

    app.wait_for_status(&ids[1], Status::Executed).await;
    for (k, id) in ids.iter().enumerate() {
        if k != 1 {
            assert_eq!(app.status(id).await, Status::Pending);
        }
    }
}

#[tokio::test]
async fn two_approve_all_clicks_at_once_record_one_approval_per_row() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 12, no_alert).await;
    let card = app.card_ts(&ids[0]).await;
    app.card_shows(&ids[0], "Approve all 12 suspensions").await;

    tokio::join!(app.approve_all(BOB, &card), app.approve_all(CAT, &card));

    for id in &ids {
        app.wait_for_status(id, Status::Executed).await;
    }
    let approvals = events_of_kind(&app, "approval.recorded").await;
    assert_eq!(approvals.len(), 12, "one approval each");
    assert_eq!(app.op.mutation_count("suspend"), 12);
}

#[tokio::test]
async fn each_approval_names_the_incident_card_it_was_given_on() {
    let app = grouping_app().await;
    let ids = wave(&app, 0, 4, no_alert).await;
    let card = app.card_ts(&ids[0]).await;
    let incident = app
        .proposal(&ids[0])
        .await
        .incident
        .unwrap()
        .incident
        .to_string();
    app.card_shows(&ids[0], "Approve all 4 suspensions").await;

    app.approve_all(BOB, &card).await;

    for id in &ids {
        app.wait_for_status(id, Status::Executed).await;
    }
    for approval in events_of_kind(&app, "approval.recorded").await {
        assert_eq!(approval["via"]["incident"], json!(incident), "{approval}");
        assert_eq!(approval["via"]["ts"], json!(card), "{approval}");
    }
}

#[tokio::test]
async fn a_wave_against_slacks_posting_limit_draws_no_429() {
    // Paced a little under the stand-in's limit, as the clocks of two hosts differ.
    let timing = Timing {
        slack_post_every: Duration::from_millis(120),
        ..grouping()
    };
    let app = spawn_app_with(PROTECTING_DAVE, timing).await;
    app.slack.limit_posts(Duration::from_millis(100), 3);
    let mut ids = vec![];
    for k in 0..60 {
        app.op.add_user(&user_id(k), &email(k), "Wave", "ACTIVE");
        ids.push(app.propose_unsettled(&suspension(&email(k), None)).await);
    }

    for id in &ids {
        app.card_ts(id).await;
    }
    assert_eq!(app.slack.posts_refused(), 0);
    assert!(
        app.slack.top_level_messages().len() < 20,
        "{} messages for 60 proposals",
        app.slack.top_level_messages().len()
    );
}

#[tokio::test]
async fn an_incident_card_is_escalated_once_not_once_per_row() {
    let policy = PROTECTING_DAVE.replace(
        "[suspend]\napprovals = 1\nttl = \"30m\"\n",
        "[suspend]\napprovals = 1\nttl = \"30m\"\nescalate_after = \"1s\"\nescalate_to = [\"C0ONCALL\"]\n",
    );
    assert!(
        policy.contains("escalate_after"),
        "the policy was rewritten"
    );
    let app = spawn_app_with(&policy, grouping()).await;
    let ids = wave(&app, 0, 6, no_alert).await;
    let card = app.card_ts(&ids[0]).await;

    for id in &ids {
        escalated(&app, id).await;
    }
    let posts = || -> Vec<String> {
        app.slack
            .top_level_messages()
            .into_iter()
            .filter(|m| m.channel == "C0ONCALL")
            .map(|m| m.text.unwrap_or_default())
            .collect()
    };
    // The post follows the recorded escalation; sweeps go on meanwhile.
    app.eventually("the escalation post", || !posts().is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains(&card.replace('.', "")),
        "links the card: {}",
        posts[0]
    );
    assert!(posts[0].contains("incident card"), "{}", posts[0]);
}
