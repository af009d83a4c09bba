//! A SOAR's own 1Password integration pointed at countersign: it lists and reads users live,
//! and its suspend and reactivate calls become proposals that humans decide in Slack. The
//! integration sees 1Password's wire throughout (`support::soar` speaks only that).

mod support;

use std::time::Duration;

use countersign::domain::{Action, OnePasswordUserId, Proposal, Status};
use countersign::ledger::GatewayPermission::{self, *};
use countersign::ledger::ProposalQuery;
use support::app::*;
use support::passkeys::spawn_app_with_passkeys;
use support::soar::Soar;

const EVERYTHING: [GatewayPermission; 4] = GatewayPermission::ALL;

fn user(id: &str) -> OnePasswordUserId {
    OnePasswordUserId::parse(id).unwrap()
}

impl TestApp {
    /// The proposal a gateway call made for `user`, once there is one.
    async fn gateway_proposal(&self, user_id: &str, action: Action) -> Proposal {
        for _ in 0..400 {
            let latest = self.ledger.latest_proposal_about(&user(user_id)).await;
            if let Some((proposal, _)) = latest.unwrap().filter(|(p, _)| p.action == action) {
                return proposal;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway call never proposed anything");
    }

    async fn proposals_for(&self, user_id: &str) -> usize {
        let query = ProposalQuery {
            status: None,
            action: None,
            before: None,
            target_email: None,
            limit: 1000,
        };
        let proposals = self.ledger.proposals(&query).await.unwrap();
        proposals
            .iter()
            .filter(|p| p.target.id.as_str() == user_id)
            .count()
    }
}

#[tokio::test]
async fn a_suspend_approved_in_slack_answers_200_with_the_user_suspended() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let call = tokio::spawn(async move { soar.suspend(ALICE).await });
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    app.click(BOB, "approve", &proposal.id.to_string()).await;
    let answer = call.await.unwrap();

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["id"], ALICE);
    assert_eq!(answer.body["state"], "SUSPENDED");
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
}

#[tokio::test]
async fn a_gateway_proposal_names_the_client_and_its_user_agent() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let answer = soar.post_once(ALICE, "suspend").await;
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;

    assert_eq!(answer.status, 503);
    assert_eq!(proposal.requester.actor(), "integration:tines-1password");
    assert_eq!(proposal.source.platform, "1Password Users API gateway");
    let reason = proposal.reason.as_str();
    assert!(reason.contains("tines-1password"), "{reason}");
    assert!(reason.contains("SOARPlatform-1Password/2.4.1"), "{reason}");
}

#[tokio::test]
async fn an_undecided_suspend_answers_503_with_retry_after_and_the_proposal_id() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let answer = soar.post_once(ALICE, "suspend").await;

    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body["code"], 14, "UNAVAILABLE: {:?}", answer.body);
    assert_eq!(answer.body["details"], serde_json::json!([]));
    assert!(answer.retry_after.is_some_and(|s| s >= 1));
    assert_eq!(
        answer.body["message"],
        format!("awaiting approval in Slack: proposal {}", proposal.id)
    );
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("ACTIVE"));
}

#[tokio::test]
async fn a_retry_while_pending_joins_the_proposal_and_posts_no_second_card() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let first = soar.post_once(ALICE, "suspend").await;
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    app.card_ts(&proposal.id.to_string()).await;
    let second = soar.post_once(ALICE, "suspend").await;

    assert_eq!((first.status, second.status), (503, 503));
    assert_eq!(first.body["message"], second.body["message"]);
    assert_eq!(app.proposals_for(ALICE).await, 1);
    assert_eq!(app.slack.top_level_messages().len(), 1, "one card");
}

#[tokio::test]
async fn a_denial_answers_403_naming_who_denied_why_and_the_proposal() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let call = tokio::spawn(async move { soar.suspend(ALICE).await });
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    let id = proposal.id.to_string();
    app.submit_denial(BOB, &id, "Alice is travelling; the login is hers")
        .await;
    let answer = call.await.unwrap();

    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.body["code"], 7,
        "PERMISSION_DENIED: {:?}",
        answer.body
    );
    let message = answer.body["message"].as_str().unwrap();
    assert!(message.contains("Bob"), "{message}");
    assert!(message.contains("Alice is travelling"), "{message}");
    assert!(message.contains(&id), "{message}");
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("ACTIVE"));
}

#[tokio::test]
async fn the_same_call_after_its_proposal_ended_answers_that_ending_without_proposing_again() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    soar.post_once(ALICE, "suspend").await;
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    let id = proposal.id.to_string();
    app.submit_denial(BOB, &id, "Alice is travelling; the login is hers")
        .await;
    app.wait_for_status(&id, Status::Denied).await;

    let again = soar.post_once(ALICE, "suspend").await;

    assert_eq!(again.status, 403);
    assert!(again.body["message"].as_str().unwrap().contains(&id));
    assert_eq!(app.proposals_for(ALICE).await, 1);
}

#[tokio::test]
async fn a_repeat_after_a_later_restore_proposes_again_instead_of_answering_the_old_suspension() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    let call = tokio::spawn(async move {
        let answer = soar.suspend(ALICE).await;
        (soar, answer)
    });
    let suspension = app.gateway_proposal(ALICE, Action::Suspend).await;
    app.click(BOB, "approve", &suspension.id.to_string()).await;
    let (soar, first) = call.await.unwrap();
    assert_eq!(first.body["state"], "SUSPENDED");
    let restore = app.propose_id(&restore("alice@example.com")).await;
    app.click(CAT, "approve", &restore).await;
    app.click(DAN, "approve", &restore).await;
    app.wait_for_status(&restore, Status::Executed).await;

    let again = soar.post_once(ALICE, "suspend").await;

    assert_eq!(again.status, 503, "{:?}", again.body);
    let newer = app.gateway_proposal(ALICE, Action::Suspend).await;
    assert_ne!(newer.id, suspension.id);
}

#[tokio::test]
async fn an_expired_proposal_answers_409_aborted() {
    let app = spawn_app_with(&policy_with_ttls("1s", "24h"), test_timing()).await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    soar.post_once(ALICE, "suspend").await;
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    app.wait_for_status(&proposal.id.to_string(), Status::Expired)
        .await;

    let answer = soar.post_once(ALICE, "suspend").await;

    assert_eq!(answer.status, 409);
    assert_eq!(answer.body["code"], 10, "ABORTED: {:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .starts_with("expired"));
}

#[tokio::test]
async fn a_failed_execution_answers_with_1passwords_own_error() {
    let app = spawn_app().await;
    app.op.fail_user(ALICE, 403, "no_owner_remain");
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let call = tokio::spawn(async move { soar.suspend(ALICE).await });
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    app.click(BOB, "approve", &proposal.id.to_string()).await;
    let answer = call.await.unwrap();

    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["code"], 7);
    assert_eq!(answer.body["message"], "no_owner_remain");
}

#[tokio::test]
async fn a_restore_needs_two_approvers_and_their_passkeys() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let mut cat = app.enroll(CAT).await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let call = tokio::spawn(async move { soar.reactivate(MALLORY).await });
    let proposal = app.gateway_proposal(MALLORY, Action::Restore).await;
    let id = proposal.id.to_string();
    let bobs = app.vote_link(BOB, &id).await;
    assert_eq!(app.vote_with(&bobs, &mut bob).await.status(), 200);
    assert_eq!(
        app.status(&id).await,
        Status::Pending,
        "one vote is not enough"
    );
    let cats = app.vote_link(CAT, &id).await;
    assert_eq!(app.vote_with(&cats, &mut cat).await.status(), 200);
    let answer = call.await.unwrap();

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["state"], "ACTIVE");
    assert_eq!(app.proposal(&id).await.approvals.len(), 2);
}

#[tokio::test]
async fn an_auto_approve_rule_naming_the_client_suspends_without_a_click() {
    let rule = r#"
[[auto_approve]]
name = "soar-gateway"
integration = "tines-1password"
max_per_hour = 5
"#;
    let app = spawn_app_with(&policy_with("", rule), test_timing()).await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let answer = soar.suspend(ALICE).await;

    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["state"], "SUSPENDED");
    let proposal = app.gateway_proposal(ALICE, Action::Suspend).await;
    assert_eq!(proposal.auto_approved_by.as_deref(), Some("soar-gateway"));
}

#[tokio::test]
async fn a_client_without_suspend_users_is_refused_and_nothing_is_proposed() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "read-only", &[ListUsers, GetUser]).await;

    let answer = soar.post_once(ALICE, "suspend").await;

    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["code"], 7);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("suspend-users"));
    assert_eq!(app.proposals_for(ALICE).await, 0);
    assert!(app.op.requests().iter().all(|r| !r.path.contains(ALICE)));
}

#[tokio::test]
async fn a_client_without_get_user_cannot_read_a_user() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "suspender", &[SuspendUsers]).await;

    let answer = soar.get(ALICE).await;

    assert_eq!(
        (answer.status, answer.body["code"].clone()),
        (403, 7.into())
    );
}

#[tokio::test]
async fn reads_are_live_from_1password_with_the_callers_paging() {
    let app = spawn_app().await;
    for n in 0..5 {
        app.op.add_user(
            &format!("USER{n:022}"),
            &format!("user{n}@example.com"),
            &format!("User {n}"),
            "ACTIVE",
        );
    }
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    let direct = Soar::at_onepassword(&app.op);

    let through_countersign = soar.list_all(2).await;
    let from_1password = direct.list_all(2).await;
    app.op.set_state(ALICE, "SUSPENDED");
    let alice = soar.get(ALICE).await;

    assert_eq!(through_countersign, from_1password);
    assert_eq!(through_countersign.len(), 7);
    assert_eq!(alice.body["state"], "SUSPENDED", "not cached");
    let pages = app
        .op
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/users")
                && r.user_agent
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("countersign/")
        })
        .count();
    assert_eq!(pages, 4, "the caller's page size, page by page");
}

#[tokio::test]
async fn a_revoked_client_gets_no_token_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let (id, secret) = app.gateway_client("tines-1password", &EVERYTHING).await;
    let soar = Soar::new(&app.address, &app.op.version, &id, &secret);
    assert_eq!(soar.get(ALICE).await.status, 200);

    app.ledger
        .revoke_gateway_client(&id, chrono::Utc::now())
        .await
        .unwrap();

    assert_eq!(soar.get(ALICE).await.status, 401);
    let token = soar
        .request_token(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(token.status, 401);
    assert_eq!(token.body["error"], "invalid_client");
}

#[tokio::test]
async fn every_token_issued_and_revoked_is_in_the_ledger_without_the_token() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    let token = soar.token().await;

    assert_eq!(soar.revoke(&token).await.status, 200);

    let events = app.ledger.events(0, 1000).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(kinds.contains(&"gateway.client_created"), "{kinds:?}");
    assert!(kinds.contains(&"gateway.token_issued"), "{kinds:?}");
    assert!(kinds.contains(&"gateway.token_revoked"), "{kinds:?}");
    for event in &events {
        assert!(!event.payload.to_string().contains(&token));
    }
    assert_eq!(
        soar.get(ALICE).await.status,
        401,
        "the revoked token is dead"
    );
}

#[tokio::test]
async fn a_client_over_its_rate_limit_is_answered_429_with_retry_after() {
    let app = spawn_app_limited(
        &policy_with("", ""),
        test_timing(),
        3, // requests a minute
    )
    .await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(soar.get(ALICE).await);
    }

    let last = statuses.last().unwrap();
    assert_eq!(last.status, 429);
    assert_eq!(last.body["code"], 8, "RESOURCE_EXHAUSTED");
    assert!(last.retry_after.is_some());
}

#[tokio::test]
async fn shutdown_releases_a_waiting_call() {
    let timing = countersign::config::Timing {
        gateway_wait: Duration::from_secs(600),
        ..test_timing()
    };
    let app = spawn_app_with(&policy_with("", ""), timing).await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;
    soar.token().await;

    let call = tokio::spawn(async move { soar.post_once(ALICE, "suspend").await });
    app.gateway_proposal(ALICE, Action::Suspend).await;
    tokio::time::timeout(Duration::from_secs(30), app.shut_down())
        .await
        .expect("shutdown did not wait out the call");
    let answer = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the wait ended at shutdown")
        .unwrap();

    assert_eq!(answer.status, 503);
}

#[tokio::test]
async fn malformed_client_credentials_are_invalid_client_and_issue_nothing() {
    let app = spawn_app().await;
    let url = format!("{}/{}/users/oauth2/token", app.address, app.op.version);
    let events = app.event_count().await;
    let http = reqwest::Client::builder()
        .user_agent("SOARPlatform-1Password/2.4.1")
        .build()
        .unwrap();

    for authorization in ["Basic !!!not-base64", "Basic Og==", "Bearer x", "Basic"] {
        let response = http
            .post(&url)
            .header("Authorization", authorization)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{authorization}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn an_oversized_token_form_is_refused_unread() {
    let app = spawn_app().await;
    let (id, secret) = app.gateway_client("tines-1password", &EVERYTHING).await;
    let padding = "x".repeat(100 * 1024);

    let response = reqwest::Client::builder()
        .user_agent("SOARPlatform-1Password/2.4.1")
        .build()
        .unwrap()
        .post(format!(
            "{}/{}/users/oauth2/token",
            app.address, app.op.version
        ))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("padding", &padding)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn a_malformed_user_id_verb_or_path_is_refused_and_proposes_nothing() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    let bad_id = soar.post_once("not-a-user-id", "suspend").await;
    let bad_verb = soar.post_once(ALICE, "delete").await;
    let bad_get = soar.get("%00%ff").await;

    assert_eq!(
        (bad_id.status, bad_id.body["code"].clone()),
        (404, 5.into())
    );
    assert_eq!(bad_verb.status, 404);
    assert_eq!(
        (bad_get.status, bad_get.body["code"].clone()),
        (400, 3.into())
    );
    assert_eq!(app.proposals_for(ALICE).await, 0);
}

#[tokio::test]
async fn gateway_requests_are_counted_by_operation_and_status() {
    let app = spawn_app().await;
    let soar = Soar::at_gateway(&app, "tines-1password", &EVERYTHING).await;

    soar.get(ALICE).await;
    soar.post_once(ALICE, "suspend").await;

    let metrics = app.metrics().await;
    for line in [
        "countersign_gateway_requests_total{operation=\"token\",status=\"200\"} 1",
        "countersign_gateway_requests_total{operation=\"get\",status=\"200\"} 1",
        "countersign_gateway_requests_total{operation=\"suspend\",status=\"503\"} 1",
        "countersign_gateway_request_seconds_count{operation=\"suspend\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
