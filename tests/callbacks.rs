//! Callbacks tell automation how its proposal ended, signed, retried, and never in the way of
//! execution.

mod support;

use countersign::domain::Status;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::app::*;
use support::callback_receiver::CallbackReceiver;

fn with_callback(mut body: Value, url: &str) -> Value {
    body["callback_url"] = json!(url);
    body
}

/// Checks `t=<unix>,v1=<hex>` as a receiver would, with the shared secret.
fn verifies(signature: &str, body: &str) -> bool {
    let Some((t, v1)) = signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(CALLBACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap_or_default())
        .is_ok()
}

#[tokio::test]
async fn an_executed_proposal_is_announced_with_a_verifiable_signature() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let id = app
        .propose_id(&with_callback(suspend_alice(), &receiver.url))
        .await;

    app.click(BOB, "approve", &id).await;

    app.eventually("the callback", || !receiver.deliveries().is_empty())
        .await;
    let delivery = &receiver.deliveries()[0];
    assert!(
        verifies(&delivery.signature, &delivery.body),
        "{}",
        delivery.signature
    );
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    assert_eq!(body["event"], "executed");
    assert_eq!(body["proposal"]["id"], id.as_str());
    assert_eq!(body["proposal"]["execution"]["outcome"], "suspended");
}

#[tokio::test]
async fn a_denial_is_announced() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let id = app
        .propose_id(&with_callback(suspend_alice(), &receiver.url))
        .await;

    app.submit_denial(BOB, &id, "Alice is on a sanctioned trip to Lisbon")
        .await;

    app.eventually("the callback", || !receiver.deliveries().is_empty())
        .await;
    let body: Value = serde_json::from_str(&receiver.deliveries()[0].body).unwrap();
    assert_eq!(body["event"], "denied");
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_until_delivered_without_holding_up_execution() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(2).await;
    let id = app
        .propose_id(&with_callback(suspend_alice(), &receiver.url))
        .await;

    app.click(BOB, "approve", &id).await;

    app.wait_for_status(&id, Status::Executed).await;
    assert_eq!(app.op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    for _ in 0..400 {
        if !receiver.deliveries().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        receiver.deliveries().len(),
        1,
        "delivered once after {} attempts",
        receiver.attempts()
    );
    assert_eq!(receiver.attempts(), 3);
    // The delivery's own ledger event is written once the receiver has answered.
    let mut recorded = 0;
    for _ in 0..400 {
        recorded = app
            .event_kinds()
            .await
            .iter()
            .filter(|k| *k == "callback.attempted")
            .count();
        if recorded >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let attempts = app
        .event_kinds()
        .await
        .iter()
        .filter(|k| *k == "callback.attempted")
        .count();
    assert_eq!(
        (recorded, attempts),
        (3, 3),
        "every attempt is in the ledger, once"
    );
}
