//! Acts of Slack on a test app: signed HTTP requests, or in Socket Mode envelopes on the app's
//! own WebSocket (`COUNTERSIGN_TEST_SLACK=socket`), answered the same way either way.

use std::time::Duration;

use serde_json::Value;

use super::app::{TestApp, CHANNEL, TEAM};
use super::slack_signing::{self, SIGNING_SECRET};

impl TestApp {
    pub async fn post_signed(
        &self,
        path: &str,
        body: &str,
        timestamp: i64,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request
                .header("x-slack-request-timestamp", timestamp.to_string())
                .header("x-slack-signature", signature);
        }
        request.send().await.unwrap()
    }

    /// Sends an interaction exactly as Slack does: signed over HTTP, or in Socket Mode as an
    /// envelope (answered as Slack shows it: the acknowledgement's payload as the body).
    pub async fn interact(&self, payload: &Value) -> reqwest::Response {
        if self.socket_mode {
            return self.enveloped("interactive", payload.clone()).await;
        }
        let body = slack_signing::interaction_body(payload);
        let now = slack_signing::now();
        let signature = slack_signing::sign(SIGNING_SECRET, now, &body);
        self.post_signed("/slack/interactions", &body, now, Some(&signature))
            .await
    }

    /// `user` runs a slash command; returns Slack's immediate answer. Later answers go to the
    /// response_url named `response_id` (see [`TestApp::later_answer`]).
    pub async fn command(&self, user: &str, command: &str, text: &str, response_id: &str) -> Value {
        let body = slack_signing::slash_command_body(
            TEAM,
            user,
            command,
            text,
            CHANNEL,
            &self.slack.response_url(response_id),
        );
        if self.socket_mode {
            let fields: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
            let payload: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let response = self
                .enveloped("slash_commands", Value::Object(payload))
                .await;
            assert_eq!(response.status(), 200, "Slack would see an error");
            return response.json().await.unwrap_or(Value::Null);
        }
        let now = slack_signing::now();
        let signature = slack_signing::sign(SIGNING_SECRET, now, &body);
        let response = self
            .post_signed("/slack/commands", &body, now, Some(&signature))
            .await;
        assert_eq!(response.status(), 200, "Slack would see an error");
        response.json().await.unwrap()
    }

    /// An envelope delivered over Socket Mode, its acknowledgement as an HTTP answer: 200 with
    /// the payload (if any) as the body, or 504 when it was never acknowledged.
    pub async fn enveloped(&self, kind: &str, payload: Value) -> reqwest::Response {
        let delivery = self.slack.deliver(kind, payload).await;
        let (status, body) = match delivery.ack {
            Some(Value::Null) => (200, String::new()),
            Some(answer) => (200, answer.to_string()),
            None => (504, String::new()),
        };
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        reqwest::Response::from(response)
    }

    /// The text posted to a slash command's response_url, once it arrives.
    pub async fn later_answer(&self, response_id: &str) -> String {
        for _ in 0..400 {
            if let Some(answer) = self.slack.responses(response_id).pop() {
                return answer["text"].as_str().unwrap_or_default().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nothing was posted to the response_url {response_id}");
    }

    /// `user` clicks the button `action_id` on the card of `proposal`.
    pub async fn click(&self, user: &str, action_id: &str, proposal: &str) -> reqwest::Response {
        let card = self.card_ts(proposal).await;
        let payload = slack_signing::block_action(
            TEAM,
            user,
            action_id,
            proposal,
            CHANNEL,
            &card,
            &self.slack.response_url("click"),
        );
        let response = self.interact(&payload).await;
        assert_eq!(response.status(), 200, "Slack would see an error");
        response
    }

    /// `user` chooses `verb` ("approve", "deny", "retry") from the menu of `proposal`'s row on
    /// its incident card.
    pub async fn choose_on_row(&self, user: &str, verb: &str, proposal: &str) -> reqwest::Response {
        let card = self.card_ts(proposal).await;
        let payload = slack_signing::menu_choice(
            TEAM,
            user,
            "row",
            &format!("{verb}:{proposal}"),
            CHANNEL,
            &card,
            &self.slack.response_url("click"),
        );
        let response = self.interact(&payload).await;
        assert_eq!(response.status(), 200, "Slack would see an error");
        response
    }

    /// `user` clicks "Approve all" on the incident card `card` (and confirms the dialog).
    pub async fn approve_all(&self, user: &str, card: &str) -> reqwest::Response {
        let message = self
            .slack
            .message(CHANNEL, card)
            .expect("the incident card");
        let value = message.blocks.as_array().and_then(|blocks| {
            blocks.iter().find_map(|b| {
                b["elements"].as_array()?.iter().find_map(|e| {
                    (e["action_id"] == "approve_all")
                        .then(|| e["value"].as_str().unwrap().to_owned())
                })
            })
        });
        let value = value.expect("the card offers Approve all");
        let payload = slack_signing::block_action(
            TEAM,
            user,
            "approve_all",
            &value,
            CHANNEL,
            card,
            &self.slack.response_url("click"),
        );
        let response = self.interact(&payload).await;
        assert_eq!(response.status(), 200, "Slack would see an error");
        response
    }

    /// `user` submits the deny dialog for `proposal` with `reason`.
    pub async fn submit_denial(
        &self,
        user: &str,
        proposal: &str,
        reason: &str,
    ) -> reqwest::Response {
        let payload = slack_signing::view_submission(
            TEAM,
            user,
            "deny_reason",
            proposal,
            &[("reason", "reason", reason)],
        );
        self.interact(&payload).await
    }
}
