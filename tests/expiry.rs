//! Proposals wait for a decision only so long: a reminder half way, then expiry.

mod support;

use std::time::Duration;

use countersign::domain::Status;
use support::app::*;

#[tokio::test]
async fn an_expired_proposal_cannot_be_approved_and_its_card_shows_it() {
    let app = spawn_app_with(&policy_with_ttls("2s", "24h"), test_timing()).await;
    let id = app.propose_id(&suspend_alice()).await;

    app.wait_for_status(&id, Status::Expired).await;
    app.click(BOB, "approve", &id).await;

    assert!(app.ephemeral_to(BOB).await.contains("already expired"));
    let blocks = app.card_shows(&id, "Expired").await;
    assert!(
        !blocks.contains("action_id"),
        "an expired card has no buttons"
    );
    assert_eq!(app.op.mutation_count("suspend"), 0);
    assert!(app
        .event_kinds()
        .await
        .contains(&"proposal.expired".to_string()));
}

#[tokio::test]
async fn approvers_are_reminded_once_half_way_to_expiry() {
    let app = spawn_app_with(&policy_with_ttls("4s", "24h"), test_timing()).await;
    let id = app.propose_id(&suspend_alice()).await;
    let ts = app.card_ts(&id).await;

    let reminders = || {
        app.slack
            .thread_replies(&ts)
            .into_iter()
            .filter(|m| {
                m.text
                    .as_deref()
                    .unwrap_or_default()
                    .contains("Still waiting")
            })
            .collect::<Vec<_>>()
    };
    app.eventually("the reminder", || !reminders().is_empty())
        .await;
    assert_eq!(
        app.status(&id).await,
        Status::Pending,
        "reminded before expiry"
    );
    let text = reminders()[0].text.clone().unwrap();
    assert!(
        text.contains("<!subteam^S0ONCALL>") && text.contains("<@U0BOB>"),
        "{text}"
    );

    app.wait_for_status(&id, Status::Expired).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reminders().len(), 1, "one reminder only");
}
