//! `countersign sandbox`: the whole product locally, driven through the page's own endpoints
//! the way the browser drives them.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::app::spawn_app;
use support::authenticator::SoftPasskey;
use support::passkeys::{ceremony, origin_of, path_of};
use support::sandbox::{start_sandbox, start_sandbox_with};

struct Sandbox {
    base: String,
    http: reqwest::Client,
}

impl Sandbox {
    async fn start() -> Self {
        Self {
            base: start_sandbox().await,
            http: reqwest::Client::new(),
        }
    }

    /// `countersign sandbox --socket-mode`.
    async fn start_in_socket_mode() -> Self {
        Self {
            base: start_sandbox_with(true).await,
            http: reqwest::Client::new(),
        }
    }

    async fn state(&self) -> Value {
        self.http
            .get(format!("{}/sandbox/api/state", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/sandbox/api/{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The operator's invitation from the page, enrolled with a new software passkey.
    async fn enroll(&self, user: &str) -> SoftPasskey {
        let invited = self.post("invite", json!({"user": user})).await;
        let link = invited["url"]
            .as_str()
            .expect("an enrollment link")
            .to_owned();
        let mut passkey = SoftPasskey::new(&origin_of(&link));
        let enrolled = ceremony(&self.http, &self.base, &path_of(&link), |o| {
            passkey.register(o)
        })
        .await;
        assert_eq!(enrolled.status(), 200);
        passkey
    }

    /// Carol's suspension proposed on the page: its id and its card's ts, once posted.
    async fn suspension_of_carol(&self) -> (String, String) {
        let proposed = self
            .post("propose", json!({"action": "suspend", "email": "carol@example.com", "reason": "Phishing link clicked", "confidence": "low"}))
            .await;
        let id = proposed["body"]["id"].as_str().unwrap().to_owned();
        let state = self
            .until("the card", |s| {
                !s["messages"].as_array().unwrap().is_empty()
            })
            .await;
        let ts = state["messages"][0]["ts"].as_str().unwrap().to_owned();
        (id, ts)
    }

    /// Waits for the state to satisfy `check`, and returns it.
    async fn until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..400 {
            let state = self.state().await;
            if check(&state) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the sandbox never showed {what}: {}", self.state().await);
    }
}

/// The vote link the last ephemeral to `user` offers, if any.
fn vote_link_for(state: &Value, user: &str) -> Option<String> {
    let text = state["ephemerals"]
        .as_array()?
        .iter()
        .rev()
        .find(|e| e["user"] == user)?["text"]
        .as_str()?
        .to_owned();
    let start = text.find("http://")?;
    let link: String = text[start..]
        .chars()
        .take_while(|c| !matches!(c, '|' | '>' | ' '))
        .collect();
    link.contains("/passkey/vote/").then_some(link)
}

fn onepassword_state(state: &Value, email: &str) -> String {
    let user = state["onepassword"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap();
    user["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_restore_proposed_on_the_page_and_approved_by_two_reactivates_the_user() {
    let sandbox = Sandbox::start().await;
    let page = sandbox
        .http
        .get(format!("{}/sandbox", sandbox.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    let proposed = sandbox
        .post("propose", json!({"action": "restore", "email": "mallory@example.com", "reason": "Laptop recovered and wiped"}))
        .await;
    assert_eq!(proposed["status"], 201, "{proposed}");
    let id = proposed["body"]["id"].as_str().unwrap().to_owned();
    let state = sandbox
        .until("the card", |s| {
            !s["messages"].as_array().unwrap().is_empty()
        })
        .await;
    let ts = state["messages"][0]["ts"].as_str().unwrap().to_owned();

    // Each approver enrolls a passkey (the page's operator invitation) and confirms the vote
    // their Approve click is answered with.
    for user in ["U0BOB", "U0CAT"] {
        let mut passkey = sandbox.enroll(user).await;
        let click = sandbox
            .post(
                "click",
                json!({"user": user, "action_id": "approve", "value": id, "message_ts": ts}),
            )
            .await;
        assert_eq!(click["status"], 200);
        let state = sandbox
            .until("the vote link", |s| vote_link_for(s, user).is_some())
            .await;
        let link = vote_link_for(&state, user).unwrap();
        let voted = ceremony(&sandbox.http, &sandbox.base, &path_of(&link), |o| {
            passkey.assert(o)
        })
        .await;
        assert_eq!(voted.status(), 200);
    }

    sandbox
        .until("Mallory reactivated", |s| {
            onepassword_state(s, "mallory@example.com") == "ACTIVE"
        })
        .await;
    // The card follows the ledger's record, a moment after 1Password acted.
    sandbox
        .until("the card to say Executed", |s| {
            s["messages"][0]["blocks"].to_string().contains("Executed")
        })
        .await;
}

#[tokio::test]
async fn deny_on_the_page_opens_the_dialog_and_its_reason_is_recorded() {
    let sandbox = Sandbox::start().await;
    let (id, ts) = sandbox.suspension_of_carol().await;

    sandbox
        .post(
            "click",
            json!({"user": "U0CAT", "action_id": "deny", "value": id, "message_ts": ts}),
        )
        .await;
    let state = sandbox
        .until("the deny dialog", |s| {
            !s["views"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(state["views"][0]["user"], "U0CAT");
    let view = state["views"][0]["id"].as_str().unwrap().to_owned();
    let refused = sandbox
        .post(
            "view",
            json!({"user": "U0CAT", "view_id": view, "values": {"reason": {"reason": "no"}}}),
        )
        .await;
    assert_eq!(refused["body"]["response_action"], "errors");
    sandbox.post("view", json!({"user": "U0CAT", "view_id": view, "values": {"reason": {"reason": "Carol reported the email herself"}}})).await;

    let state = sandbox
        .until("the denial on the card", |s| {
            s["messages"][0]["blocks"].to_string().contains("Denied")
        })
        .await;
    assert!(state["views"].as_array().unwrap().is_empty());
    assert_eq!(onepassword_state(&state, "carol@example.com"), "ACTIVE");
}

#[tokio::test]
async fn a_slash_command_on_the_page_is_answered() {
    let sandbox = Sandbox::start().await;
    let answer = sandbox
        .post(
            "command",
            json!({"user": "U0BOB", "command": "/approvals", "text": "help"}),
        )
        .await;
    assert!(answer["answer"].as_str().unwrap().contains("Usage"));
}

#[tokio::test]
async fn serve_never_exposes_the_sandbox() {
    let app = spawn_app().await;
    for path in ["/sandbox", "/sandbox/api/state"] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_sandbox_refuses_a_non_loopback_address() {
    let error =
        countersign::sandbox::run("0.0.0.0:0".parse().unwrap(), false, std::future::pending())
            .await
            .unwrap_err();
    assert!(error.to_string().contains("loopback"));
}

#[tokio::test]
async fn the_page_can_change_a_user_in_the_1password_console() {
    let sandbox = Sandbox::start().await;

    let changed = sandbox
        .post(
            "console",
            json!({"id": "ALICE0000000000000000000AA", "state": "SUSPENDED"}),
        )
        .await;
    let refused = sandbox
        .post("console", json!({"id": "NOBODY", "state": "SUSPENDED"}))
        .await;

    assert_eq!(changed["status"], 200);
    assert_eq!(refused["status"], 422);
    sandbox
        .until("Alice suspended outside countersign", |s| {
            onepassword_state(s, "alice@example.com") == "SUSPENDED"
        })
        .await;
}

#[tokio::test]
async fn the_printed_gateway_example_suspends_a_user_after_an_approve_click() {
    let sandbox = Sandbox::start().await;
    let state = sandbox.state().await;
    let example = state["gateway_example"].as_str().unwrap().to_owned();

    let curl = tokio::process::Command::new("sh")
        .args(["-c", &example])
        .output();
    let run = tokio::spawn(curl);
    let state = sandbox
        .until("the card", |s| {
            !s["messages"].as_array().unwrap().is_empty()
        })
        .await;
    let card = &state["messages"][0];
    let id = button_value(&card["blocks"], "approve").expect("an Approve button");
    let click = sandbox
        .post(
            "click",
            json!({"user": "U0BOB", "action_id": "approve", "value": id, "message_ts": card["ts"]}),
        )
        .await;
    let output = run.await.unwrap().expect("sh and curl run");

    assert_eq!(click["status"], 200, "{click}");
    let answer: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(answer["state"], "SUSPENDED", "{answer}");
    assert_eq!(
        onepassword_state(&sandbox.state().await, "alice@example.com"),
        "SUSPENDED"
    );
}

/// The `value` of the button with `action_id` in Block Kit `blocks`.
fn button_value(blocks: &Value, action_id: &str) -> Option<String> {
    match blocks {
        Value::Object(map) if map.get("action_id").and_then(Value::as_str) == Some(action_id) => {
            map.get("value").and_then(Value::as_str).map(str::to_owned)
        }
        Value::Object(map) => map.values().find_map(|v| button_value(v, action_id)),
        Value::Array(items) => items.iter().find_map(|v| button_value(v, action_id)),
        _ => None,
    }
}

#[tokio::test]
async fn in_socket_mode_the_page_approves_a_suspension_without_slacks_http_routes() {
    let sandbox = Sandbox::start_in_socket_mode().await;
    let (id, ts) = sandbox.suspension_of_carol().await;

    let click = sandbox
        .post(
            "click",
            json!({"user": "U0BOB", "action_id": "approve", "value": id, "message_ts": ts}),
        )
        .await;

    assert_eq!(click["status"], 200, "{click}");
    sandbox
        .until("Carol suspended", |s| {
            onepassword_state(s, "carol@example.com") == "SUSPENDED"
        })
        .await;
    let metrics = sandbox
        .http
        .get(format!("{}/metrics", sandbox.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("countersign_slack_envelopes_total{type=\"interactive\"} 1"),
        "the click came over Socket Mode: {metrics}"
    );
    let http_route = sandbox
        .http
        .post(format!("{}/slack/interactions", sandbox.base))
        .body("payload=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(http_route.status(), 404, "Slack's HTTP routes are off");
}

#[tokio::test]
async fn the_page_opens_a_home_tab_whose_approve_button_counts() {
    let sandbox = Sandbox::start().await;
    let proposed = sandbox
        .post("propose", json!({"action": "suspend", "email": "carol@example.com", "reason": "Phishing link clicked", "confidence": "low"}))
        .await;
    let id = proposed["body"]["id"].as_str().unwrap().to_owned();

    let opened = sandbox.post("home", json!({"user": "U0BOB"})).await;
    let state = sandbox
        .until("Bob's Home", |s| {
            button_value(&s["homes"]["U0BOB"], "approve").is_some()
        })
        .await;
    let value = button_value(&state["homes"]["U0BOB"], "approve").unwrap();
    let click = sandbox
        .post(
            "click",
            json!({"user": "U0BOB", "action_id": "approve", "value": value, "message_ts": ""}),
        )
        .await;

    assert_eq!(opened["status"], 200, "{opened}");
    assert_eq!(value, id);
    assert_eq!(click["status"], 200, "{click}");
    sandbox
        .until("Carol suspended", |s| {
            onepassword_state(s, "carol@example.com") == "SUSPENDED"
        })
        .await;
}

/// The incident cards in the page's state: (text, blocks, ts).
fn incident_cards(state: &Value) -> Vec<(String, Value, String)> {
    state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str().unwrap_or("").starts_with("Incident:"))
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_owned(),
                m["blocks"].clone(),
                m["ts"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The count in "Incident: N suspensions proposed".
fn members_of(text: &str) -> usize {
    text.trim_start_matches("Incident: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_wave_from_the_page_arrives_as_incident_cards_that_one_click_approves() {
    let sandbox = Sandbox::start().await;

    let wave = sandbox.post("wave", json!({})).await;
    assert_eq!(wave["body"]["accepted"], 50, "{wave}");
    // The card whose "Approve all" covers every member of the incident.
    let covering_all = |s: &Value| {
        incident_cards(s).into_iter().find(|(text, blocks, _)| {
            button_value(blocks, "approve_all")
                .is_some_and(|v| v.ends_with(&format!(":{}", members_of(text))))
        })
    };
    let state = sandbox
        .until("a card covering the incident", |s| {
            covering_all(s).is_some()
        })
        .await;
    let (text, blocks, ts) = covering_all(&state).unwrap();
    let members = members_of(&text);
    assert!(
        members >= 49,
        "at most the first proposal outran the wave: {text}"
    );

    let value = button_value(&blocks, "approve_all").unwrap();
    let click = sandbox
        .post(
            "click",
            json!({"user": "U0BOB", "action_id": "approve_all", "value": value, "message_ts": ts}),
        )
        .await;

    assert_eq!(click["status"], 200, "{click}");
    sandbox
        .until("every incident card to be decided", |s| {
            let cards = incident_cards(s);
            !cards.is_empty()
                && cards
                    .iter()
                    .all(|(text, _, _)| text.contains("All decided"))
        })
        .await;
}

#[tokio::test]
async fn a_wave_right_after_a_lookup_by_email_finds_every_user() {
    let sandbox = Sandbox::start().await;
    // A proposal by email makes countersign list 1Password's users, a listing it keeps.
    let first = sandbox
        .post("propose", json!({"action": "suspend", "email": "carol@example.com", "reason": "Phishing link clicked", "confidence": "low"}))
        .await;
    assert_eq!(first["status"], 201, "{first}");

    let wave = sandbox.post("wave", json!({})).await;

    assert_eq!(wave["body"]["accepted"], 50, "{wave}");
}

#[tokio::test]
async fn a_console_reactivation_on_the_page_is_announced_naming_the_console_user() {
    let sandbox = Sandbox::start().await;
    let (id, ts) = sandbox.suspension_of_carol().await;
    sandbox
        .post(
            "click",
            json!({"user": "U0BOB", "action_id": "approve", "value": id, "message_ts": ts}),
        )
        .await;
    sandbox
        .until("Carol suspended", |s| {
            onepassword_state(s, "carol@example.com") == "SUSPENDED"
        })
        .await;
    let carol = sandbox.state().await["onepassword"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "carol@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    sandbox
        .post("console", json!({"id": carol, "state": "ACTIVE"}))
        .await;

    sandbox
        .until("the urgent announcement naming the console user", |s| {
            s["messages"].as_array().unwrap().iter().any(|m| {
                let text = m["text"].as_str().unwrap_or_default();
                text.contains("reactivated in the 1Password console by Dana Owner")
            })
        })
        .await;
}
