//! Escalation: a proposal still pending `escalate_after` past its card is posted once in each
//! escalation channel (mentioning the user groups) and sent to each named user, with the
//! card's facts and a link to it; never after a decision.

mod support;

use std::time::Duration;

use countersign::domain::Status;
use support::app::*;

const ESCALATING: &str = r#"
escalate_after = "1s"
escalate_to = ["C0ONCALL", "S0SECOPS", "U0DAN"]
"#;

/// The suite's policy with suspensions escalated after a second.
async fn escalating_app() -> TestApp {
    let policy = policy_with_ttls("30m", "24h").replace(
        "[suspend]\napprovals = 1\nttl = \"30m\"\n",
        &format!("[suspend]\napprovals = 1\nttl = \"30m\"\n{ESCALATING}"),
    );
    assert!(
        policy.contains("escalate_after"),
        "the policy was rewritten"
    );
    spawn_app_with(&policy, test_timing()).await
}

fn posts_to(app: &TestApp, channel: &str) -> Vec<String> {
    app.slack
        .top_level_messages()
        .into_iter()
        .filter(|m| m.channel == channel)
        .map(|m| m.text.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_proposal_still_pending_is_escalated_once_to_each_channel_and_person() {
    let app = escalating_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let card = app.card_ts(&id).await;

    app.eventually("the escalation posts", || {
        posts_to(&app, "C0ONCALL").len() == 1 && posts_to(&app, "U0DAN").len() == 1
    })
    .await;
    app.eventually("the thread to say so", || {
        app.slack
            .thread_replies(&card)
            .iter()
            .any(|r| r.text.as_deref().unwrap_or("").contains("Escalated"))
    })
    .await;
    // Sweeps go on; nothing is escalated twice.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let post = &posts_to(&app, "C0ONCALL")[0];
    assert!(post.contains("<!subteam^S0SECOPS>"), "{post}");
    assert!(
        post.contains(&card.replace('.', "")),
        "links the card: {post}"
    );
    assert!(post.contains("alice@example.com"), "{post}");
    assert_eq!(posts_to(&app, "C0ONCALL").len(), 1);
    assert_eq!(posts_to(&app, "U0DAN").len(), 1);
    let kinds = app.event_kinds().await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "proposal.escalated").count(),
        1
    );
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_proposal_decided_before_its_time_is_not_escalated() {
    let app = escalating_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    // Past `escalate_after`, with sweeps every 100 ms.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert!(posts_to(&app, "C0ONCALL").is_empty());
    assert!(posts_to(&app, "U0DAN").is_empty());
    assert!(!app
        .event_kinds()
        .await
        .contains(&"proposal.escalated".to_owned()));
}

#[tokio::test]
async fn restores_escalate_only_where_the_policy_says() {
    let app = escalating_app().await;
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.card_ts(&id).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert!(
        posts_to(&app, "C0ONCALL").is_empty(),
        "only suspensions escalate here"
    );
}
