//! A vote counts only with the approver's own passkey where the policy asks for one (a
//! restore's default): enrollment rooted outside Slack, a click alone never counting, one-time
//! links, every rule re-run at the assertion, and a cloned passkey refused and announced.

mod support;

use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;
use support::authenticator::SoftPasskey;
use support::database;
use support::passkeys::*;

/// A restore of Mallory proposed by automation, its card posted.
async fn restore_of_mallory(app: &TestApp) -> String {
    app.propose_id(&restore("mallory@example.com")).await
}

async fn problem_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn an_operators_invitation_enrolls_a_passkey_for_the_slack_user_it_names() {
    let app = spawn_app_with_passkeys().await;
    let path = app.invite_passkey(BOB).await;

    let page = app
        .http
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let mut passkey = SoftPasskey::new(PUBLIC_URL);
    let enrolled = app.ceremony(&path, |o| passkey.register(o)).await;

    assert!(
        html.contains(BOB),
        "the page names the Slack user it enrolls"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(enrolled.status(), 200);
    let stored = app.ledger.passkeys_of(BOB).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, passkey.credential_id());
    let events = app.ledger.events(0, 100).await.unwrap();
    let enrolled = events
        .iter()
        .find(|e| e.kind == "passkey.enrolled")
        .unwrap();
    assert_eq!(enrolled.payload["credential_id"], passkey.credential_id());
    assert_eq!(enrolled.payload["slack_user_id"], BOB);
    assert_eq!(enrolled.payload["aaguid"], support::authenticator::AAGUID);
}

#[tokio::test]
async fn an_enrollment_link_is_single_use() {
    let app = spawn_app_with_passkeys().await;
    let path = app.invite_passkey(BOB).await;
    let mut first = SoftPasskey::new(PUBLIC_URL);
    app.ceremony(&path, |o| first.register(o)).await;

    let again = app
        .post_json(&format!("{path}/options"), &Value::Null)
        .await;

    assert_eq!(problem_code(again).await, (410, "link_closed".to_owned()));
    assert_eq!(app.ledger.passkeys_of(BOB).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_click_alone_never_counts_where_a_restore_needs_a_passkey() {
    let app = spawn_app_with_passkeys().await;
    app.enroll(BOB).await;
    let id = restore_of_mallory(&app).await;

    app.click(BOB, "approve", &id).await;

    let told = app.ephemeral_to(BOB).await;
    assert!(told.contains("/passkey/vote/"), "{told}");
    let proposal = app.proposal(&id).await;
    assert!(proposal.approvals.is_empty());
    assert!(!app
        .event_kinds()
        .await
        .contains(&"approval.recorded".to_owned()));
}

#[tokio::test]
async fn an_approver_without_a_passkey_is_told_how_to_get_one() {
    let app = spawn_app_with_passkeys().await;
    let id = restore_of_mallory(&app).await;

    app.click(BOB, "approve", &id).await;

    assert!(app
        .ephemeral_to(BOB)
        .await
        .contains("countersign passkey invite U0BOB"));
    assert!(app.proposal(&id).await.approvals.is_empty());
}

#[tokio::test]
async fn a_restore_executes_only_after_two_passkey_verified_votes() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let mut cat = app.enroll(CAT).await;
    let id = restore_of_mallory(&app).await;

    let bobs = app.vote_link(BOB, &id).await;
    let first = app.vote_with(&bobs, &mut bob).await;
    assert_eq!(first.status(), 200);
    assert_eq!(app.status(&id).await, Status::Pending);
    let cats = app.vote_link(CAT, &id).await;
    let second = app.vote_with(&cats, &mut cat).await;

    assert_eq!(second.status(), 200);
    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.user_state(MALLORY).as_deref(), Some("ACTIVE"));
    let events = app.ledger.events(0, 1000).await.unwrap();
    let votes: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "approval.recorded")
        .map(|e| &e.payload["proof"])
        .collect();
    assert_eq!(votes.len(), 2);
    for proof in votes {
        assert_eq!(proof["method"], "passkey");
        assert_eq!(proof["user_verified"], true);
    }
    app.card_shows(&id, "(passkey-verified)").await;
}

#[tokio::test]
async fn a_vote_link_is_single_use() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let id = restore_of_mallory(&app).await;
    let link = app.vote_link(BOB, &id).await;
    app.vote_with(&link, &mut bob).await;

    let again = app
        .post_json(&format!("{link}/options"), &Value::Null)
        .await;

    assert_eq!(problem_code(again).await, (410, "link_closed".to_owned()));
    assert_eq!(app.proposal(&id).await.approvals.len(), 1);
}

#[tokio::test]
async fn an_expired_vote_link_counts_nothing() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let id = restore_of_mallory(&app).await;
    let link = app.vote_link(BOB, &id).await;
    // Its five minutes pass.
    database::execute(
        &app.database_url,
        "UPDATE passkey_links SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE purpose = 'vote'",
    )
    .await
    .unwrap();

    let voted = app
        .post_json(&format!("{link}/options"), &Value::Null)
        .await;

    assert_eq!(problem_code(voted).await, (410, "link_closed".to_owned()));
    let _ = &mut bob;
    assert!(app.proposal(&id).await.approvals.is_empty());
}

#[tokio::test]
async fn another_users_passkey_never_satisfies_a_link() {
    let app = spawn_app_with_passkeys().await;
    app.enroll(BOB).await;
    let mut cat = app.enroll(CAT).await;
    let id = restore_of_mallory(&app).await;
    let bobs = app.vote_link(BOB, &id).await;

    let voted = app.vote_with(&bobs, &mut cat).await;

    assert_eq!(problem_code(voted).await.0, 400);
    assert!(app.proposal(&id).await.approvals.is_empty());
}

#[tokio::test]
async fn a_signature_counter_that_does_not_advance_is_refused_recorded_and_announced() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let id = restore_of_mallory(&app).await;
    let first = app.vote_link(BOB, &id).await;
    app.vote_with(&first, &mut bob).await;
    app.op.add_user(
        "MALLORY2AAAAAAAAAAAAAAAAAA",
        "mallory2@example.com",
        "Mallory Two",
        "SUSPENDED",
    );
    let other = app.propose_id(&restore("mallory2@example.com")).await;
    let second = app.vote_link(BOB, &other).await;
    // A copy of the passkey answers with the counter it had before the last vote.
    bob.counter -= 2;

    let voted = app.vote_with(&second, &mut bob).await;

    assert_eq!(
        problem_code(voted).await,
        (403, "passkey_possibly_cloned".to_owned())
    );
    assert!(app.proposal(&other).await.approvals.is_empty());
    assert!(app
        .event_kinds()
        .await
        .contains(&"passkey.refused".to_owned()));
    app.eventually("the audit channel is told", || {
        app.slack.messages().iter().any(|m| {
            m.channel == AUDIT_CHANNEL
                && m.text
                    .as_deref()
                    .unwrap_or_default()
                    .contains("cloned passkey")
        })
    })
    .await;
}

#[tokio::test]
async fn a_proposal_denied_between_click_and_assertion_counts_nothing() {
    let app = spawn_app_with_passkeys().await;
    let mut bob = app.enroll(BOB).await;
    let id = restore_of_mallory(&app).await;
    let link = app.vote_link(BOB, &id).await;
    app.submit_denial(CAT, &id, "Not the right time to restore this account")
        .await;
    app.wait_for_status(&id, Status::Denied).await;

    let voted = app.vote_with(&link, &mut bob).await;

    assert_eq!(problem_code(voted).await, (409, "vote_refused".to_owned()));
    assert!(app.proposal(&id).await.approvals.is_empty());
}

#[tokio::test]
async fn a_requester_of_a_restore_is_offered_no_vote_link() {
    let app = spawn_app_with_passkeys().await;
    app.enroll(CAT).await;
    app.command(
        CAT,
        "/restore",
        "<mailto:mallory@example.com|mallory@example.com> Laptop recovered and wiped",
        "r1",
    )
    .await;
    app.later_answer("r1").await;
    let id = app
        .ledger
        .proposals(&countersign::ledger::ProposalQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .id
        .to_string();

    app.click(CAT, "approve", &id).await;

    let told = app.ephemeral_to(CAT).await;
    assert!(told.contains("You asked for this restore"), "{told}");
    assert!(!told.contains("/passkey/"), "{told}");
}

#[tokio::test]
async fn serve_refuses_to_start_when_the_policy_needs_a_passkey_and_public_url_is_unset() {
    let world = support::process::World::start().await;
    let mut serve = tokio::process::Command::from(world.command());
    serve
        .arg("serve")
        .env("PUBLIC_URL", "")
        .env("BIND_ADDR", "127.0.0.1:0");

    let output = tokio::time::timeout(std::time::Duration::from_secs(20), serve.output())
        .await
        .expect("serve refuses at once")
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PUBLIC_URL is unset"), "{stderr}");
}

#[tokio::test]
async fn passkey_invite_prints_the_one_time_link_alone_on_stdout() {
    let world = support::process::World::start().await;

    let output = world.run(&["passkey", "invite", "U0BOB"]).await;

    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with("http://localhost:8080/passkey/enroll/"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_link_opens_at_most_five_ceremonies() {
    let app = spawn_app_with_passkeys().await;
    let path = app.invite_passkey(BOB).await;
    for _ in 0..5 {
        let options = app
            .post_json(&format!("{path}/options"), &Value::Null)
            .await;
        assert_eq!(options.status(), 200);
    }

    let sixth = app
        .post_json(&format!("{path}/options"), &Value::Null)
        .await;

    assert_eq!(problem_code(sixth).await, (429, "link_attempts".to_owned()));
}

#[test]
fn policy_check_warns_what_a_restore_without_a_passkey_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[approvers]\nusers = [\"U0BOB\"]\n[restore]\nstep_up = \"none\"\n",
    )
    .unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
        .args(["policy", "check", file.to_str().unwrap()])
        .output()
        .unwrap();

    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("warning: restore.step_up = \"none\""),
        "{stdout}"
    );
    assert!(stdout.contains("hijacked Slack sessions"), "{stdout}");
}

/// The link `/approvals passkey` answers `user` with, as a path.
async fn add_link(app: &TestApp, user: &str) -> String {
    let answer = app.command(user, "/approvals", "passkey", "r-add").await;
    path_of(answer["text"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn an_approver_adds_a_second_passkey_after_proving_the_first() {
    let app = spawn_app_with_passkeys().await;
    let mut first = app.enroll(BOB).await;
    let path = add_link(&app, BOB).await;
    let mut second = SoftPasskey::new(PUBLIC_URL);

    let options = app
        .post_json(&format!("{path}/options"), &Value::Null)
        .await;
    let options: Value = options.json().await.unwrap();
    let proved = app
        .post_json(&format!("{path}/prove"), &first.assert(&options))
        .await;
    assert_eq!(proved.status(), 200);
    let creation: Value = proved.json().await.unwrap();
    let added = app
        .post_json(&format!("{path}/finish"), &second.register(&creation))
        .await;

    assert_eq!(added.status(), 200);
    let ids: Vec<String> = app
        .ledger
        .passkeys_of(BOB)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [first.credential_id(), second.credential_id()]);
    let events = app.ledger.events(0, 100).await.unwrap();
    let added = events
        .iter()
        .rfind(|e| e.kind == "passkey.enrolled")
        .unwrap();
    assert_eq!(added.payload["vouched_by"], first.credential_id());
}

#[tokio::test]
async fn a_passkey_is_never_added_without_proving_one_first() {
    let app = spawn_app_with_passkeys().await;
    app.enroll(BOB).await;
    let path = add_link(&app, BOB).await;
    let mut intruder = SoftPasskey::new(PUBLIC_URL);
    // A hijacked session asks for options and answers them with a new credential instead.
    let options = app
        .post_json(&format!("{path}/options"), &Value::Null)
        .await;
    let options: Value = options.json().await.unwrap();
    let forged = json!({"publicKey": {"challenge": options["publicKey"]["challenge"], "user": {"id": "AAAA"}}});

    let added = app
        .post_json(&format!("{path}/finish"), &intruder.register(&forged))
        .await;

    assert_eq!(problem_code(added).await.0, 409);
    assert_eq!(app.ledger.passkeys_of(BOB).await.unwrap().len(), 1);
}

#[tokio::test]
async fn without_a_passkey_the_add_command_says_to_ask_an_operator() {
    let app = spawn_app_with_passkeys().await;

    let answer = app.command(BOB, "/approvals", "passkey", "r-add").await;

    let text = answer["text"].as_str().unwrap_or_default();
    assert!(text.contains("countersign passkey invite U0BOB"), "{text}");
    assert!(!text.contains("/passkey/add/"), "{text}");
}
