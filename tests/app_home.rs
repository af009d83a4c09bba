//! The App Home tab: on `app_home_opened` (Events API over HTTP, or Socket Mode), an approver
//! sees what they can decide now — by the same rules as a click — with the card's buttons, and
//! their recent requests and decisions; anyone else, a short explanation.

mod support;

use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;
use support::slack_signing;

fn home_opened(user: &str) -> Value {
    json!({
        "token": "verification-token",
        "team_id": TEAM,
        "api_app_id": "A0COUNTERSIGN",
        "type": "event_callback",
        "event_id": format!("Ev{:010}", rand::random::<u32>()),
        "event_time": 1_700_000_000,
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
                  "event_ts": "1700000000.000100"},
    })
}

impl TestApp {
    /// Sends an Events API callback as Slack does: signed over HTTP, or as an envelope.
    async fn event(&self, callback: &Value) -> reqwest::Response {
        if self.socket_mode {
            return self.enveloped("events_api", callback.clone()).await;
        }
        let body = callback.to_string();
        let now = slack_signing::now();
        let signature = slack_signing::sign(slack_signing::SIGNING_SECRET, now, &body);
        self.post_signed("/slack/events", &body, now, Some(&signature))
            .await
    }

    /// Opens `user`'s Home tab and returns the Home countersign published.
    async fn home_after_opening(&self, user: &str) -> Value {
        let response = self.event(&home_opened(user)).await;
        assert_eq!(response.status(), 200);
        self.published_home(user).await
    }

    async fn published_home(&self, user: &str) -> Value {
        for _ in 0..400 {
            if let Some(home) = self.slack.home_of(user) {
                return home;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no Home was published for {user}");
    }
}

/// The proposals `user`'s published Home offers to approve (none before it is published).
fn offered(app: &TestApp, user: &str) -> Option<Vec<String>> {
    app.slack
        .home_of(user)
        .map(|home| buttons(&home, "approve"))
}

/// Every button value in a view, by action id.
fn buttons(view: &Value, action_id: &str) -> Vec<String> {
    let mut found = vec![];
    fn walk(v: &Value, action_id: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if map.get("action_id").and_then(Value::as_str) == Some(action_id) {
                    if let Some(value) = map.get("value").and_then(Value::as_str) {
                        found.push(value.to_owned());
                    }
                }
                map.values().for_each(|v| walk(v, action_id, found));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, action_id, found)),
            _ => {}
        }
    }
    walk(view, action_id, &mut found);
    found
}

#[tokio::test]
async fn url_verification_is_answered_with_its_challenge() {
    let app = spawn_app_over_http().await;

    let response = app
        .event(&json!({"token": "t", "challenge": "3eZbrw1aBm2rZgRN", "type": "url_verification"}))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["challenge"], "3eZbrw1aBm2rZgRN");
}

#[tokio::test]
async fn an_unsigned_event_is_refused() {
    let app = spawn_app_over_http().await;
    let body = home_opened(BOB).to_string();

    let response = app
        .post_signed("/slack/events", &body, slack_signing::now(), None)
        .await;

    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn opening_the_home_tab_shows_what_the_approver_can_decide_with_its_buttons() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    let home = app.home_after_opening(BOB).await;

    assert_eq!(home["type"], "home");
    assert_eq!(buttons(&home, "approve"), vec![id.clone()]);
    assert_eq!(buttons(&home, "deny"), vec![id]);
}

#[tokio::test]
async fn the_home_leaves_out_the_approvers_own_account() {
    let app = spawn_app().await;
    app.propose_id(&suspend_alice()).await;

    let home = app.home_after_opening(ALICE_SLACK).await;

    assert!(buttons(&home, "approve").is_empty(), "{home}");
    assert!(home.to_string().contains("Nothing waits for your decision"));
}

#[tokio::test]
async fn the_home_leaves_out_a_proposal_the_approver_already_counted_in() {
    let app = spawn_app().await;
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.click(BOB, "approve", &id).await;

    let bobs = app.home_after_opening(BOB).await;
    let cats = app.home_after_opening(CAT).await;

    assert!(buttons(&bobs, "approve").is_empty());
    assert!(
        bobs.to_string().contains(&id),
        "in Bob's recent decisions: {bobs}"
    );
    assert_eq!(buttons(&cats, "approve"), vec![id]);
}

#[tokio::test]
async fn someone_who_is_not_an_approver_sees_why_nothing_is_there() {
    let app = spawn_app().await;
    app.propose_id(&suspend_alice()).await;

    let home = app.home_after_opening(EVE).await;

    assert!(buttons(&home, "approve").is_empty());
    assert!(
        home.to_string().contains("not among the approvers"),
        "{home}"
    );
}

#[tokio::test]
async fn an_approve_click_on_the_home_tab_counts_like_one_on_the_card() {
    let app = spawn_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    app.home_after_opening(BOB).await;

    let response = app.interact(&home_click(&app, BOB, "approve", &id)).await;

    assert_eq!(response.status(), 200);
    app.wait_for_status(&id, Status::Executed).await;
}

/// `user` clicking `action_id` for `proposal` on their Home tab: a view, no channel or message.
fn home_click(app: &TestApp, user: &str, action_id: &str, proposal: &str) -> Value {
    let mut payload = slack_signing::block_action(
        TEAM,
        user,
        action_id,
        proposal,
        CHANNEL,
        "",
        &app.slack.response_url("home"),
    );
    payload["container"] = json!({"type": "view", "view_id": "V0HOME"});
    payload.as_object_mut().unwrap().remove("channel");
    payload.as_object_mut().unwrap().remove("message");
    payload
}

#[tokio::test]
async fn a_home_approve_of_a_restore_that_needs_a_passkey_offers_the_vote_link() {
    let app = support::passkeys::spawn_app_with_passkeys().await;
    app.enroll(BOB).await;
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.home_after_opening(BOB).await;

    let response = app.interact(&home_click(&app, BOB, "approve", &id)).await;

    assert_eq!(response.status(), 200);
    let told = app.ephemeral_to(BOB).await;
    assert!(told.contains("/passkey/vote/"), "{told}");
    assert!(
        app.proposal(&id).await.approvals.is_empty(),
        "a click alone never counts"
    );
    let ephemeral = app.slack.ephemerals().pop().unwrap();
    assert_eq!(
        ephemeral.params["channel"], CHANNEL,
        "told in the approvals channel"
    );
}

#[tokio::test]
async fn more_proposals_than_fit_are_counted_and_linked_to_the_channel() {
    let app = spawn_app().await;
    for n in 0..23 {
        let (user, email) = (format!("MANY{n:022}"), format!("many{n}@example.com"));
        app.op.add_user(&user, &email, "Many", "ACTIVE");
        let mut body = suspend_alice();
        body["user"] = json!({"email": email});
        app.propose_unsettled(&body).await;
    }

    let home = app.home_after_opening(BOB).await;

    assert_eq!(buttons(&home, "approve").len(), 20);
    assert!(home["blocks"].as_array().unwrap().len() <= 100);
    let text = home.to_string();
    assert!(text.contains("3 more wait in <#C0APPROVALS>"), "{text}");
}

#[tokio::test]
async fn app_home_opened_over_socket_mode_publishes_the_home() {
    let app = spawn_app_in_socket_mode().await;
    app.eventually("Socket Mode connections", || {
        app.slack.open_connections() == 2
    })
    .await;
    let id = app.propose_id(&suspend_alice()).await;

    let delivery = app.slack.deliver("events_api", home_opened(BOB)).await;

    assert_eq!(
        delivery.ack,
        Some(Value::Null),
        "events are acknowledged without a payload"
    );
    let home = app.published_home(BOB).await;
    assert_eq!(buttons(&home, "approve"), vec![id]);
}

#[tokio::test]
async fn an_open_home_follows_what_the_approver_can_decide() {
    let app = spawn_app().await;
    let before = app.home_after_opening(BOB).await;
    assert!(buttons(&before, "approve").is_empty());

    let id = app.propose_id(&suspend_alice()).await;

    app.eventually("Bob's Home to offer the new proposal", || {
        offered(&app, BOB) == Some(vec![id.clone()])
    })
    .await;
    app.click(CAT, "approve", &id).await;
    app.eventually("Bob's Home to drop the decided proposal", || {
        offered(&app, BOB) == Some(vec![])
    })
    .await;
}

#[tokio::test]
async fn a_home_never_opened_is_never_published() {
    let app = spawn_app().await;
    app.home_after_opening(BOB).await;

    let id = app.propose_id(&suspend_alice()).await;

    app.eventually("Bob's Home refreshed", || {
        offered(&app, BOB) == Some(vec![id.clone()])
    })
    .await;
    assert_eq!(offered(&app, CAT), None);
}
