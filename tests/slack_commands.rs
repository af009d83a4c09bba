//! Slash commands: responders propose by hand and list what waits for them. Malformed input
//! gets usage and records nothing.

mod support;

use countersign::domain::Status;
use countersign::ledger::ProposalQuery;
use support::app::*;

async fn only_proposal(app: &TestApp) -> countersign::domain::Proposal {
    let query = ProposalQuery {
        limit: 10,
        ..ProposalQuery::default()
    };
    let mut all = app.ledger.proposals(&query).await.unwrap();
    assert_eq!(all.len(), 1, "expected exactly one proposal");
    all.remove(0)
}

#[tokio::test]
async fn a_responders_suspend_counts_as_their_approval_and_executes_at_once() {
    let app = spawn_app().await;

    let answer = app
        .command(
            BOB,
            "/suspend",
            "alice@example.com Phished at 3am, token reused",
            "r1",
        )
        .await;

    assert_eq!(answer["response_type"], "ephemeral");
    let later = app.later_answer("r1").await;
    assert!(later.contains("counts as your approval"), "{later}");
    assert!(
        later.contains("https://slack.com/archives/C0APPROVALS/p"),
        "{later}"
    );
    let proposal = only_proposal(&app).await;
    app.wait_for_status(&proposal.id.to_string(), Status::Executed)
        .await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert_eq!(proposal.requester.actor(), "slack:U0BOB");
}

#[tokio::test]
async fn a_restore_never_counts_its_requester() {
    let app = spawn_app().await;

    app.command(
        BOB,
        "/restore",
        "<mailto:mallory@example.com|mallory@example.com> Laptop recovered and wiped",
        "r1",
    )
    .await;

    assert!(app
        .later_answer("r1")
        .await
        .contains("two approvers other than you"));
    let id = only_proposal(&app).await.id.to_string();
    app.click(BOB, "approve", &id).await;
    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("two approvers other than its requester"));
    app.click(CAT, "approve", &id).await;
    app.card_shows(&id, "needs a second approver").await;
    app.click(DAN, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
}

#[tokio::test]
async fn a_malformed_command_gets_usage_and_records_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;

    for (command, text) in [
        ("/suspend", "alice phished at 3am"),
        ("/suspend", "alice@example.com"),
        ("/suspend", "alice@example.com too short"),
        ("/restore", "not-an-email Laptop recovered and wiped"),
        ("/approvals", "everything"),
    ] {
        let answer = app.command(BOB, command, text, "r").await;
        assert_eq!(answer["response_type"], "ephemeral");
        assert!(
            answer["text"].as_str().unwrap().contains("Usage"),
            "{command} {text}: {answer}"
        );
    }

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.event_count().await, before);
    assert!(app.slack.top_level_messages().is_empty());
}

#[tokio::test]
async fn help_shows_usage() {
    let app = spawn_app().await;
    let answer = app.command(BOB, "/suspend", "help", "r").await;
    assert!(answer["text"]
        .as_str()
        .unwrap()
        .contains("/suspend <email> <reason>"));
}

#[tokio::test]
async fn an_unknown_1password_user_is_reported_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let before = app.event_count().await;

    app.command(
        BOB,
        "/suspend",
        "nobody@example.com Phished at 3am, token reused",
        "r1",
    )
    .await;

    assert!(app
        .later_answer("r1")
        .await
        .contains("No 1Password user has the email nobody@example.com"));
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn someone_who_is_not_a_requester_cannot_propose() {
    let app = spawn_app().await;
    let before = app.event_count().await;

    let answer = app
        .command(
            EVE,
            "/suspend",
            "alice@example.com Phished at 3am, token reused",
            "r1",
        )
        .await;

    assert!(answer["text"].as_str().unwrap().contains("not allowed"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn approvals_lists_pending_proposals_with_links_to_their_cards() {
    let app = spawn_app().await;
    app.propose(&suspend_alice()).await;

    let answer = app.command(CAT, "/approvals", "", "r").await;

    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("suspend Alice (alice@example.com)"), "{text}");
    assert!(text.contains("0 of 1 approval"), "{text}");
    assert!(
        text.contains("https://slack.com/archives/C0APPROVALS/p"),
        "{text}"
    );
}

#[tokio::test]
async fn approvals_mine_leaves_out_what_i_already_approved() {
    let app = spawn_app().await;
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.click(BOB, "approve", &id).await;
    app.card_shows(&id, "needs a second approver").await;

    let mine = app.command(BOB, "/approvals", "mine", "r").await;
    let cats = app.command(CAT, "/approvals", "mine", "r").await;

    assert_eq!(mine["text"], "No proposals match.");
    assert!(cats["text"].as_str().unwrap().contains("restore Mallory"));
}

#[tokio::test]
async fn approvals_are_only_for_approvers_and_requesters() {
    let app = spawn_app().await;
    let answer = app.command(EVE, "/approvals", "pending", "r").await;
    assert!(answer["text"]
        .as_str()
        .unwrap()
        .contains("Only approvers and requesters"));
}

#[tokio::test]
async fn a_responder_suspending_their_own_account_does_not_count_as_its_approval() {
    let app = spawn_app().await;

    app.command(
        ALICE_SLACK,
        "/suspend",
        "alice@example.com My laptop was stolen an hour ago",
        "r1",
    )
    .await;

    assert!(app.later_answer("r1").await.contains("needs 1 approval"));
    let proposal = only_proposal(&app).await;
    assert_eq!(proposal.status, Status::Pending);
    assert!(proposal.approvals.is_empty());
}
