//! Who counts: everyone who asked is a requester, the policy's `requester_counts` holds for
//! clicks, a Retry never revives a stale decision, and an approver from another workspace is
//! refused even without `SLACK_TEAM_ID`.

mod support;

use std::time::Duration;

use countersign::domain::{Requester, Status};
use countersign::ledger::ProposalQuery;
use serde_json::Value;
use support::app::*;
use support::fake_slack::SlackUserKind;

const RESTORE_MALLORY: &str =
    "<mailto:mallory@example.com|mallory@example.com> Laptop recovered and wiped";
const SUSPEND_ALICE: &str =
    "<mailto:alice@example.com|alice@example.com> Impossible travel then a vault export";

/// The one proposal in the ledger, once a command's background work made it.
async fn only_proposal_id(app: &TestApp) -> String {
    for _ in 0..400 {
        let query = ProposalQuery {
            limit: 10,
            ..Default::default()
        };
        let found = app.ledger.proposals(&query).await.unwrap();
        if let [one] = found.as_slice() {
            return one.id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no single proposal appeared");
}

/// A suspend of Alice that failed for good (1Password refused), ready for a Retry.
async fn failed_suspension(app: &TestApp) -> String {
    app.op.fail_user(ALICE, 403, "permission denied");
    let id = app.propose_id(&suspend_alice()).await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Failed).await;
    app.op.clear_user_failure(ALICE);
    id
}

#[tokio::test]
async fn a_restore_folded_into_a_pending_one_makes_its_author_a_requester_who_cannot_approve() {
    let app = spawn_app().await;
    app.command(CAT, "/restore", RESTORE_MALLORY, "r1").await;
    let id = only_proposal_id(&app).await;
    app.card_ts(&id).await;

    app.command(BOB, "/restore", RESTORE_MALLORY, "r2").await;
    app.later_answer("r2").await;
    app.click(BOB, "approve", &id).await;

    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("You asked for this restore"));
    let proposal = app.proposal(&id).await;
    assert!(proposal.approvals.is_empty());
    assert_eq!(proposal.status, Status::Pending);
    let requesters: Vec<String> = proposal.requesters().map(Requester::actor).collect();
    assert_eq!(requesters, ["slack:U0CAT", "slack:U0BOB"]);
}

#[tokio::test]
async fn the_card_lists_every_requester() {
    let app = spawn_app().await;
    app.command(CAT, "/restore", RESTORE_MALLORY, "r1").await;
    let id = only_proposal_id(&app).await;

    app.command(BOB, "/restore", RESTORE_MALLORY, "r2").await;

    app.card_shows(&id, "<@U0CAT>, <@U0BOB>").await;
}

#[tokio::test]
async fn the_api_lists_every_requester() {
    let app = spawn_app().await;
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.command(BOB, "/restore", RESTORE_MALLORY, "r1").await;
    app.later_answer("r1").await;
    let reader = app.token(&[countersign::ledger::Scope::Read]).await;

    let proposal: Value = app.get_json(&format!("/v1/proposals/{id}"), &reader).await;

    assert_eq!(proposal["also_requested_by"][0]["slack_user_id"], BOB);
}

#[tokio::test]
async fn with_requester_counts_off_a_suspend_requester_clicking_approve_is_refused() {
    let policy = policy_with_ttls("30m", "24h")
        .replace("[suspend]\n", "[suspend]\nrequester_counts = false\n");
    let app = spawn_app_with(&policy, test_timing()).await;
    app.command(BOB, "/suspend", SUSPEND_ALICE, "r1").await;
    let id = only_proposal_id(&app).await;

    app.click(BOB, "approve", &id).await;

    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("You asked for this suspension"));
    assert_eq!(app.status(&id).await, Status::Pending);
    assert_eq!(app.op.mutation_count("suspend"), 0);
}

#[tokio::test]
async fn a_protected_users_suspension_never_counts_its_requesters_click() {
    let app = spawn_app_with(
        &policy_with(r#"protected = ["alice@example.com"]"#, ""),
        test_timing(),
    )
    .await;
    app.command(BOB, "/suspend", SUSPEND_ALICE, "r1").await;
    let id = only_proposal_id(&app).await;

    app.click(BOB, "approve", &id).await;
    app.click(CAT, "approve", &id).await;

    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("You asked for this suspension"));
    app.card_shows(&id, "1 of 2").await;
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_retry_after_the_user_was_suspended_in_the_console_is_refused_saying_propose_again() {
    let app = spawn_app().await;
    let id = failed_suspension(&app).await;
    app.op.set_state(ALICE, "SUSPENDED");
    let calls = app.op.mutation_count("suspend");

    app.click(CAT, "retry", &id).await;

    let told = app.ephemeral_to(CAT).await;
    assert!(told.contains("changed since"), "{told}");
    assert!(told.contains("Propose it again"), "{told}");
    assert_eq!(app.status(&id).await, Status::Failed);
    assert_eq!(app.op.mutation_count("suspend"), calls);
}

#[tokio::test]
async fn a_retry_of_an_approval_older_than_the_ttl_is_refused_saying_propose_again() {
    let app = spawn_app_with(&policy_with_ttls("3s", "24h"), test_timing()).await;
    let id = failed_suspension(&app).await;
    let approved_at = app.proposal(&id).await.approved_at();
    // The approval's time to live runs out.
    while chrono::Utc::now() < approved_at + chrono::Duration::seconds(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    app.click(CAT, "retry", &id).await;

    let told = app.ephemeral_to(CAT).await;
    assert!(told.contains("longer ago than its time to live"), "{told}");
    assert_eq!(app.status(&id).await, Status::Failed);
}

#[tokio::test]
async fn a_retry_by_a_requester_of_the_restore_is_refused_like_an_approval() {
    let app = spawn_app().await;
    app.op.fail_user(MALLORY, 403, "permission denied");
    app.command(CAT, "/restore", RESTORE_MALLORY, "r1").await;
    let id = only_proposal_id(&app).await;
    app.click(BOB, "approve", &id).await;
    app.click(DAN, "approve", &id).await;
    app.wait_for_status(&id, Status::Failed).await;
    app.op.clear_user_failure(MALLORY);

    app.click(CAT, "retry", &id).await;

    assert!(app
        .ephemeral_to(CAT)
        .await
        .contains("You asked for this restore"));
    assert_eq!(app.status(&id).await, Status::Failed);
}

#[tokio::test]
async fn without_slack_team_id_an_approver_from_another_workspace_is_refused() {
    let app = spawn_app_without_slack_team_id().await;
    app.slack.add_user_of_kind(
        "U0OTHER",
        "Other",
        Some("other@example.com"),
        SlackUserKind::OtherWorkspace("T0ELSEWHERE".into()),
    );
    app.slack.add_usergroup(ONCALL, &["U0OTHER"]);
    let id = app.propose_id(&suspend_alice()).await;

    app.click("U0OTHER", "approve", &id).await;

    assert!(app
        .ephemeral_to("U0OTHER")
        .await
        .contains("another Slack workspace"));
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn without_slack_team_id_a_colleague_still_approves() {
    let app = spawn_app_without_slack_team_id().await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
}
