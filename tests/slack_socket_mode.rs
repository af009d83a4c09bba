//! Socket Mode: Slack's requests over WebSockets countersign opens to Slack (its stand-in
//! here), answered by the same handlers as the HTTP routes, acknowledged with their
//! `envelope_id`, and never counted twice when Slack delivers an envelope again.

mod support;

use std::time::Duration;

use countersign::domain::Status;
use serde_json::{json, Map, Value};
use support::app::*;
use support::fake_slack::{Delivery, Lifecycle};
use support::slack_signing;

/// An app in Socket Mode with both its connections open.
async fn socket_app() -> TestApp {
    let app = spawn_app_in_socket_mode().await;
    app.eventually("two Socket Mode connections", || {
        app.slack.open_connections() == 2
    })
    .await;
    app
}

/// A slash command as the `slash_commands` envelope carries it: the form's fields as JSON.
fn slash_command(app: &TestApp, user: &str, command: &str, text: &str) -> Value {
    let form = slack_signing::slash_command_body(
        TEAM,
        user,
        command,
        text,
        CHANNEL,
        &app.slack.response_url("socket"),
    );
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
    let object: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(object)
}

impl TestApp {
    /// `user` of workspace `team` clicking `action_id` on `proposal`'s card, as Slack sends it.
    async fn click_payload(
        &self,
        team: &str,
        user: &str,
        action_id: &str,
        proposal: &str,
    ) -> Value {
        let card = self.card_ts(proposal).await;
        slack_signing::block_action(
            team,
            user,
            action_id,
            proposal,
            CHANNEL,
            &card,
            &self.slack.response_url("click"),
        )
    }

    /// `/readyz` once it says `unavailable` (or as it stands after the test's patience).
    async fn unready(&self) -> Value {
        let mut readiness = self.readiness().await;
        for _ in 0..200 {
            if readiness["status"] == "unavailable" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            readiness = self.readiness().await;
        }
        readiness
    }

    /// `user` clicks `action_id` on `proposal`'s card, delivered over Socket Mode.
    async fn socket_click(&self, user: &str, action_id: &str, proposal: &str) -> Delivery {
        let payload = self.click_payload(TEAM, user, action_id, proposal).await;
        self.slack.deliver("interactive", payload).await
    }
}

/// The fewest connections open at any moment after the first `n` opened.
fn fewest_open_after(history: &[Lifecycle], n: usize) -> usize {
    let mut open = 0usize;
    let mut fewest = usize::MAX;
    let mut opened = 0;
    for event in history {
        match event {
            Lifecycle::Opened(_) => {
                open += 1;
                opened += 1;
            }
            Lifecycle::Closed(_) => open -= 1,
        }
        if opened >= n {
            fewest = fewest.min(open);
        }
    }
    fewest
}

#[tokio::test]
async fn a_click_over_socket_mode_approves_and_executes_a_suspension() {
    let app = socket_app().await;
    let id = app.propose_id(&suspend_alice()).await;

    let delivery = app.socket_click(BOB, "approve", &id).await;

    assert_eq!(delivery.ack, Some(Value::Null), "acknowledged, once");
    assert_eq!(delivery.attempts, 1);
    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
}

#[tokio::test]
async fn a_slash_commands_answer_rides_in_the_acknowledgement() {
    let app = socket_app().await;

    let delivery = app
        .slack
        .deliver("slash_commands", slash_command(&app, BOB, "/approvals", ""))
        .await;

    let answer = delivery.ack.expect("acknowledged");
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    assert!(!answer["text"].as_str().unwrap_or_default().is_empty());
}

#[tokio::test]
async fn the_deny_dialogs_errors_ride_in_the_acknowledgement() {
    let app = socket_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let payload = slack_signing::view_submission(
        TEAM,
        BOB,
        "deny_reason",
        &id,
        &[("reason", "reason", "no")],
    );

    let delivery = app.slack.deliver("interactive", payload).await;

    let answer = delivery.ack.expect("acknowledged");
    assert_eq!(answer["response_action"], "errors", "{answer}");
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn a_slash_command_whose_ack_is_lost_is_delivered_again_and_proposes_once() {
    let app = socket_app().await;
    app.slack.deliver_again_after(Duration::from_millis(300));
    app.slack.lose_next_acks(1);
    let command = slash_command(
        &app,
        BOB,
        "/suspend",
        "alice@example.com Phished credentials used from a new country",
    );

    let delivery = app.slack.deliver("slash_commands", command).await;

    assert_eq!(
        delivery.attempts, 2,
        "the lost ack made Slack deliver it again"
    );
    assert!(delivery.ack.is_some());
    app.eventually("the card", || !app.slack.top_level_messages().is_empty())
        .await;
    app.eventually("the command's answer", || {
        !app.slack.responses("socket").is_empty()
    })
    .await;
    // Handled twice, the command would answer twice; nothing more may come.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.slack.responses("socket").len(), 1);
    let events = app.event_kinds().await;
    let created = events.iter().filter(|k| *k == "proposal.created").count();
    assert_eq!(created, 1, "{events:?}");
}

#[tokio::test]
async fn a_click_delivered_twice_counts_once() {
    let app = socket_app().await;
    app.slack.deliver_again_after(Duration::from_millis(300));
    let id = app.propose_id(&restore("mallory@example.com")).await;
    app.slack.lose_next_acks(1);

    let delivery = app.socket_click(BOB, "approve", &id).await;

    assert_eq!(delivery.attempts, 2);
    assert_eq!(app.proposal(&id).await.approvals.len(), 1);
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn refresh_requested_opens_the_new_connection_before_closing_the_old() {
    let app = socket_app().await;
    app.slack.close_refreshed_after(Duration::from_secs(5));

    app.slack.disconnect_all("refresh_requested");

    app.eventually("two new connections", || {
        let history = app.slack.connection_history();
        history
            .iter()
            .filter(|e| matches!(e, Lifecycle::Opened(_)))
            .count()
            == 4
            && history
                .iter()
                .filter(|e| matches!(e, Lifecycle::Closed(_)))
                .count()
                == 2
    })
    .await;
    assert_eq!(fewest_open_after(&app.slack.connection_history(), 2), 2);
    let id = app.propose_id(&suspend_alice()).await;
    assert_eq!(app.socket_click(BOB, "approve", &id).await.attempts, 1);
}

#[tokio::test]
async fn a_warning_is_handled_like_a_refresh_without_a_gap() {
    let app = socket_app().await;
    app.slack.close_refreshed_after(Duration::from_secs(5));

    app.slack.disconnect_all("warning");

    app.eventually("the old connections replaced", || {
        let history = app.slack.connection_history();
        history
            .iter()
            .filter(|e| matches!(e, Lifecycle::Closed(_)))
            .count()
            == 2
    })
    .await;
    assert_eq!(fewest_open_after(&app.slack.connection_history(), 2), 2);
    assert_eq!(app.slack.open_connections(), 2);
}

#[tokio::test]
async fn link_disabled_shows_in_readyz_until_socket_mode_is_back() {
    let app = socket_app().await;

    app.slack.disconnect_all("link_disabled");

    let readiness = app.unready().await;
    let problem = readiness["slack_socket"]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(problem.contains("link_disabled"), "{readiness}");
    assert!(
        problem.contains("Socket Mode"),
        "says what to do: {problem}"
    );
    app.slack.enable_socket_mode();
    app.eventually("connections back", || app.slack.open_connections() == 2)
        .await;
}

#[tokio::test]
async fn a_revoked_app_token_shows_in_readyz_and_is_not_retried_in_a_tight_loop() {
    let app = socket_app().await;
    app.slack.revoke_app_token();

    app.slack.drop_connections();

    let readiness = app.unready().await;
    let problem = readiness["slack_socket"]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(problem.contains("invalid_auth"), "{readiness}");
    assert!(
        problem.contains("connections:write"),
        "says what to do: {problem}"
    );
    let before = app.slack.calls_to("apps.connections.open").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = app.slack.calls_to("apps.connections.open").len() - before;
    // Two slots, each asking again every 300 ms (the suite's SOCKET fatal retry), not in a loop.
    assert!(asked <= 10, "asked {asked} times in a second");
}

#[tokio::test]
async fn a_connection_dropped_mid_burst_loses_no_click() {
    let app = socket_app().await;
    app.slack.deliver_again_after(Duration::from_millis(500));
    let mut ids = vec![];
    for n in 0..8 {
        let (user, email) = (format!("BURST{n:021}"), format!("burst{n}@example.com"));
        app.op.add_user(&user, &email, "Burst", "ACTIVE");
        let mut body = suspend_alice();
        body["user"] = json!({"email": email});
        ids.push(app.propose_id(&body).await);
    }

    let clicks = ids.iter().map(|id| app.socket_click(BOB, "approve", id));
    let dropping = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        app.slack.drop_connections();
    };
    let (deliveries, ()) = tokio::join!(futures_util::future::join_all(clicks), dropping);

    for delivery in &deliveries {
        assert!(delivery.ack.is_some(), "{delivery:?}");
    }
    for id in &ids {
        app.wait_for_status(id, Status::Executed).await;
    }
}

#[tokio::test]
async fn slacks_http_routes_answer_404_in_socket_mode() {
    let app = socket_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let card = app.card_ts(&id).await;
    let payload = slack_signing::block_action(
        TEAM,
        BOB,
        "approve",
        &id,
        CHANNEL,
        &card,
        &app.slack.response_url("x"),
    );

    let body = slack_signing::interaction_body(&payload);
    let now = slack_signing::now();
    let signature = slack_signing::sign(slack_signing::SIGNING_SECRET, now, &body);

    let response = app
        .post_signed("/slack/interactions", &body, now, Some(&signature))
        .await;

    assert_eq!(response.status(), 404);
    assert_eq!(app.status(&id).await, Status::Pending);
}

#[tokio::test]
async fn readyz_and_metrics_show_the_connections() {
    let app = socket_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    app.socket_click(BOB, "approve", &id).await;

    let readiness = app.readiness().await;
    let metrics = app.metrics().await;

    assert_eq!(
        readiness["slack_socket"]["connections_open"], 2,
        "{readiness}"
    );
    assert!(
        metrics.contains("countersign_slack_socket_connections 2"),
        "{metrics}"
    );
    assert!(metrics.contains("countersign_slack_envelopes_total{type=\"interactive\"} 1"));
    assert!(metrics.contains("countersign_slack_ack_seconds_count{type=\"interactive\"} 1"));
}

#[tokio::test]
async fn an_envelope_from_another_workspace_is_refused_and_changes_nothing() {
    let app = socket_app().await;
    let id = app.propose_id(&suspend_alice()).await;
    let payload = app.click_payload("T0ELSEWHERE", BOB, "approve", &id).await;

    let delivery = app.slack.deliver("interactive", payload).await;

    assert!(
        delivery.ack.is_some(),
        "acknowledged, so Slack does not deliver it again"
    );
    assert_eq!(app.status(&id).await, Status::Pending);
    assert!(app.proposal(&id).await.approvals.is_empty());
}
