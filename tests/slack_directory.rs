//! Who may decide is read from Slack at click time: user groups, cached for a short window.

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::domain::Status;
use support::app::*;

const ROSA: &str = "U0ROSA";

#[tokio::test]
async fn a_group_member_may_approve_and_a_removed_member_may_not_after_the_cache_window() {
    let timing = Timing {
        directory_cache: Duration::from_secs(1),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with_ttls("30m", "24h"), timing).await;
    app.slack.add_user(ROSA, "Rosa", Some("rosa@example.com"));
    app.slack.add_usergroup(ONCALL, &[ROSA]);
    let first = app.propose_id(&suspend_alice()).await;

    app.click(ROSA, "approve", &first).await;
    app.wait_for_status(&first, Status::Executed).await;

    app.slack.add_usergroup(ONCALL, &[]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = app.propose_id(&restore("mallory@example.com")).await;
    app.click(ROSA, "approve", &second).await;

    assert!(app.ephemeral_to(ROSA).await.contains("not an approver"));
    assert_eq!(app.status(&second).await, Status::Pending);
}
