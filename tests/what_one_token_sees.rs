//! What leaks between tokens: a report folded into another token's proposal answers with what
//! its own token may see, keeps its own callback and cancels only its own request; and a
//! callback URL, a secret, is shown whole only to the token that set it, never logged and never
//! written to the ledger.

mod support;

use countersign::domain::Status;
use countersign::ledger::Scope;
use serde_json::{json, Value};
use support::app::*;
use support::callback_receiver::CallbackReceiver;
use support::process::World;

const SECRET: &str = "s3cr3tT0k3n";

/// Alice's suspension as token `name` reports it, with its own alert and callback.
fn report(alert: &str, callback: &str) -> Value {
    let mut body = suspend_alice();
    body["source"] = json!({"platform": "tines", "alert_id": alert});
    body["callback_url"] = json!(callback);
    body
}

fn secret_url(receiver: &CallbackReceiver, who: &str) -> String {
    format!("{}?token={SECRET}-{who}", receiver.url)
}

async fn propose_as(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let response = app.propose_with(token, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_cancel(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/proposals/{id}/cancel", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Waits until no callback job is left in `server`'s outbox (delivered or given up).
async fn callbacks_settled(world: &World, server: &support::process::Server) {
    for _ in 0..400 {
        let metrics = world
            .http
            .get(format!("{}/metrics", server.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("countersign_outbox_depth{lane=\"callback\"} 0") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the callback job never settled");
}

/// Alice's suspension asked for by token A ("tines", alert A-100) and then by token B ("torq",
/// alert B-200), each with its own secret callback URL: the app, the receiver, the two tokens
/// and the proposal's id.
async fn asked_by_two_tokens() -> (TestApp, CallbackReceiver, [String; 2], String) {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let a = app.token_named("tines", &[Scope::ProposeSuspend]).await;
    let b = app.token_named("torq", &[Scope::ProposeSuspend]).await;
    let (_, first) = propose_as(&app, &a, &report("A-100", &secret_url(&receiver, "a"))).await;
    propose_as(&app, &b, &report("B-200", &secret_url(&receiver, "b"))).await;
    let id = first["id"].as_str().unwrap().to_owned();
    (app, receiver, [a, b], id)
}

#[tokio::test]
async fn a_report_folded_into_another_tokens_proposal_answers_without_its_token_source_or_callback()
{
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let a = app.token_named("tines", &[Scope::ProposeSuspend]).await;
    let b = app.token_named("torq", &[Scope::ProposeSuspend]).await;
    let (_, first) = propose_as(&app, &a, &report("A-100", &secret_url(&receiver, "a"))).await;

    let (status, answer) =
        propose_as(&app, &b, &report("B-200", &secret_url(&receiver, "b"))).await;

    assert_eq!(status, 200);
    assert_eq!(answer["id"], first["id"]);
    let seen = answer.to_string();
    assert!(!seen.contains("A-100"), "A's source: {seen}");
    assert!(
        !seen.contains(&format!("{SECRET}-a")),
        "A's callback: {seen}"
    );
    assert!(
        answer["requester"].get("token_id").is_none(),
        "A's token: {seen}"
    );
    assert_eq!(answer["callback_host"], "127.0.0.1");
    assert!(
        seen.contains(&format!("{SECRET}-b")),
        "B's own callback: {seen}"
    );
}

#[tokio::test]
async fn each_token_that_asked_is_called_back_at_the_end_with_what_it_may_see() {
    let (app, receiver, _tokens, id) = asked_by_two_tokens().await;

    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    app.eventually("two callbacks", || receiver.deliveries().len() == 2)
        .await;

    let bodies: Vec<String> = receiver.deliveries().into_iter().map(|d| d.body).collect();
    let for_b = bodies
        .iter()
        .find(|body| body.contains(&format!("{SECRET}-b")))
        .expect("B is called back");
    assert!(!for_b.contains(&format!("{SECRET}-a")), "{for_b}");
    assert!(!for_b.contains("A-100"), "{for_b}");
}

#[tokio::test]
async fn a_cancel_by_one_token_withdraws_only_its_request_while_another_token_asks() {
    let (app, _receiver, [a, b], id) = asked_by_two_tokens().await;

    let withdrawn = post_cancel(&app, &a, &id).await;

    assert_eq!(withdrawn.status(), 200);
    assert_eq!(app.status(&id).await, Status::Pending);
    assert!(app
        .event_kinds()
        .await
        .contains(&"proposal.request_withdrawn".to_owned()));
    let cancelled = post_cancel(&app, &b, &id).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(app.status(&id).await, Status::Cancelled);
}

#[tokio::test]
async fn a_reader_sees_only_the_host_of_a_callback_url() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let id = app
        .propose_id(&report("A-100", &secret_url(&receiver, "a")))
        .await;
    let reader = app.token(&[Scope::Read]).await;

    let seen = app.get_json(&format!("/v1/proposals/{id}"), &reader).await;

    assert_eq!(seen["callback_url"], Value::Null);
    assert_eq!(seen["callback_host"], "127.0.0.1");
    assert!(!seen.to_string().contains(SECRET));
}

#[tokio::test]
async fn the_ledger_names_a_callback_url_by_its_host_and_hash_never_whole() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let id = app
        .propose_id(&report("A-100", &secret_url(&receiver, "a")))
        .await;
    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    app.eventually("the callback", || receiver.deliveries().len() == 1)
        .await;
    for _ in 0..400 {
        if app
            .event_kinds()
            .await
            .contains(&"callback.attempted".to_owned())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    let events = app.ledger.events(0, 1000).await.unwrap();
    let all =
        serde_json::to_string(&events.iter().map(|e| &e.payload).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(SECRET), "{all}");
    let created = events
        .iter()
        .find(|e| e.kind == "proposal.created")
        .unwrap();
    assert_eq!(created.payload["callback_url"]["host"], "127.0.0.1");
    assert_eq!(
        created.payload["callback_url"]["sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
}

#[tokio::test]
async fn a_callback_url_is_never_logged_and_a_host_taken_off_the_allow_list_is_never_called() {
    let world = World::start().await;
    let receiver = CallbackReceiver::start(0).await;
    let callback = secret_url(&receiver, "a");
    let allowed = [
        ("CALLBACK_ALLOWED_HOSTS", "127.0.0.1"),
        ("CALLBACK_SIGNING_SECRET", CALLBACK_SECRET),
        ("RUST_LOG", "debug"),
    ];
    let first = world.serve_with("first", &allowed).await;
    let token = world.create_token().await;
    let created: Value = world
        .http
        .post(format!("{}/v1/proposals", first.address))
        .bearer_auth(&token)
        .json(&report("A-100", &callback))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let card = world.card_ts().await;
    let first_logs = first.logs();
    drop(first);

    // The operator takes the host off the list; the approved proposal's callback is not sent.
    let others = [
        ("CALLBACK_ALLOWED_HOSTS", "soar.example.com"),
        ("CALLBACK_SIGNING_SECRET", CALLBACK_SECRET),
        ("RUST_LOG", "debug"),
    ];
    let second = world.serve_with("second", &others).await;
    world.approve(&second, &id, &card).await;
    second.wait_for_status(&token, &id, "executed").await;
    callbacks_settled(&world, &second).await;

    assert_eq!(receiver.attempts(), 0);
    let second_logs = second.logs();
    assert!(
        second_logs.contains("is not in CALLBACK_ALLOWED_HOSTS"),
        "the callback was given up for its host"
    );
    for logs in [first_logs, second_logs] {
        assert!(!logs.contains(SECRET), "a callback URL was logged");
    }
}
