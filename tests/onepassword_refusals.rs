//! What 1Password's documented refusals and optional fields mean for a proposal, through the
//! whole product: a user without a name still gets a card, one without an email cannot be
//! proposed, and an owner or externally managed admin fails with what to do.

mod support;

use countersign::domain::Status;
use serde_json::{json, Value};
use support::app::*;
use support::callback_receiver::CallbackReceiver;
use support::fake_onepassword::{Role, SeedUser};

/// A 26-character id for the n-th seeded user.
fn user_id(n: usize) -> String {
    format!("USER{n:022}")
}

#[tokio::test]
async fn a_proposal_by_email_for_a_user_without_a_display_name_reaches_a_card() {
    let app = spawn_app().await;
    app.op.add(SeedUser {
        display_name: None,
        ..SeedUser::member(&user_id(1), "noname@example.com", "", "ACTIVE")
    });
    let mut body = suspend_alice();
    body["user"] = json!({"email": "noname@example.com"});

    let proposal = app.propose(&body).await;

    assert_eq!(proposal["target"]["display_name"], "noname@example.com");
    app.card_shows(proposal["id"].as_str().unwrap(), "noname@example.com")
        .await;
}

#[tokio::test]
async fn a_proposal_by_id_for_a_user_without_an_email_is_refused_and_records_nothing() {
    let app = spawn_app().await;
    app.op.add(SeedUser {
        email: None,
        ..SeedUser::member(&user_id(1), "", "No Email", "ACTIVE")
    });
    let token = app
        .token(&[countersign::ledger::Scope::ProposeSuspend])
        .await;
    let mut body = suspend_alice();
    body["user"] = json!({"id": user_id(1)});
    let events_before = app.event_count().await;

    let response = app.propose_with(&token, &body).await;

    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("no email"));
    assert_eq!(app.event_count().await, events_before);
}

async fn failed_suspension_of(app: &TestApp, user: SeedUser, receiver: &CallbackReceiver) -> Value {
    let id = user.id.clone();
    app.op.add(user);
    let mut body = suspend_alice();
    body["user"] = json!({"id": id});
    body["callback_url"] = json!(receiver.url);
    let proposal = app.propose_id(&body).await;
    app.click(BOB, "approve", &proposal).await;
    app.wait_for_status(&proposal, Status::Failed).await;
    app.eventually("the failed callback", || !receiver.deliveries().is_empty())
        .await;
    let callback: Value = serde_json::from_str(&receiver.deliveries()[0].body).unwrap();
    assert_eq!(callback["event"], "failed");
    callback["proposal"].clone()
}

#[tokio::test]
async fn suspending_the_last_owner_ends_failed_saying_why_and_what_to_do() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let owner = SeedUser {
        role: Role::Owner,
        ..SeedUser::member(&user_id(1), "owner@example.com", "Owner", "ACTIVE")
    };

    let proposal = failed_suspension_of(&app, owner, &receiver).await;

    let error = proposal["execution"]["last_error"].as_str().unwrap();
    assert!(error.contains("last remaining owner"), "{error}");
    assert!(error.contains("Make another person an owner"), "{error}");
    app.card_shows(proposal["id"].as_str().unwrap(), "last remaining owner")
        .await;
}

#[tokio::test]
async fn suspending_an_externally_managed_admin_ends_failed_saying_why_and_what_to_do() {
    let app = spawn_app().await;
    let receiver = CallbackReceiver::start(0).await;
    let admin = SeedUser {
        role: Role::Admin,
        externally_managed: true,
        ..SeedUser::member(&user_id(1), "eam@example.com", "EAM", "ACTIVE")
    };

    let proposal = failed_suspension_of(&app, admin, &receiver).await;

    let error = proposal["execution"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("externally managed administrator"),
        "{error}"
    );
    assert!(error.contains("identity provider"), "{error}");
    app.card_shows(proposal["id"].as_str().unwrap(), "externally managed")
        .await;
}
