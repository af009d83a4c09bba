//! The 1Password Users API contract, as developer.1password.com publishes it: the stand-in
//! refuses what the service refuses, and our client sends only what the service accepts and
//! reads everything the service may answer.

mod support;

use std::sync::Arc;
use std::time::Duration;

use countersign::domain::{AccountId, Email, OnePasswordUserId, Status, UserState};
use countersign::metrics::Metrics;
use countersign::onepassword::{OnePassword, OnePasswordConfig, OpError, Refusal};
use support::app::*;
use support::fake_onepassword::{FakeOnePassword, LastPage, Role, SeedUser};
use support::soar::Soar;

/// The operations of the published v1beta1 document, as (method, path template). Written from
/// the reference pages, not from our client.
const PUBLISHED: [(&str, &str); 6] = [
    ("POST", "/{version}/users/oauth2/token"),
    ("POST", "/{version}/users/oauth2/revoke"),
    ("GET", "/{version}/accounts/{account_id}/users"),
    ("GET", "/{version}/accounts/{account_id}/users/{user_id}"),
    (
        "POST",
        "/{version}/accounts/{account_id}/users/{user_id}:suspend",
    ),
    (
        "POST",
        "/{version}/accounts/{account_id}/users/{user_id}:reactivate",
    ),
];
/// "List users" query parameters.
const LIST_PARAMETERS: [&str; 3] = ["filter", "max_page_size", "page_token"];

fn client_for(op: &FakeOnePassword) -> OnePassword {
    let _ = rustls::crypto::ring::default_provider().install_default();
    OnePassword::new(
        OnePasswordConfig {
            base_url: op.base_url.clone(),
            api_version: op.version.clone(),
            account: AccountId::parse(FakeOnePassword::ACCOUNT_ID).unwrap(),
            client_id: FakeOnePassword::CLIENT_ID.into(),
            client_secret: FakeOnePassword::CLIENT_SECRET.into(),
            timeout: Duration::from_secs(5),
        },
        Arc::new(Metrics::default()),
    )
}

/// A 26-character id for the n-th seeded user.
fn user_id(n: usize) -> String {
    format!("USER{n:022}")
}

fn seed_members(op: &FakeOnePassword, count: usize) {
    for n in 0..count {
        op.add_user(
            &user_id(n),
            &format!("user{n}@example.com"),
            &format!("User {n}"),
            "ACTIVE",
        );
    }
}

fn email(text: &str) -> Email {
    Email::parse(text).unwrap()
}

fn matches_template(template: &str, path: &str, version: &str) -> bool {
    let template = template.replace("{version}", version);
    let (t_parts, p_parts): (Vec<_>, Vec<_>) =
        (template.split('/').collect(), path.split('/').collect());
    t_parts.len() == p_parts.len()
        && t_parts
            .iter()
            .zip(&p_parts)
            .all(|(t, p)| match t.split_once('}') {
                // "{user_id}:suspend" matches "ID:suspend"; "{account_id}" matches one segment.
                Some((_, suffix)) if t.starts_with('{') => {
                    p.ends_with(suffix)
                        && p.len() > suffix.len()
                        && !p[..p.len() - suffix.len()].contains(':')
                }
                _ => t == p,
            })
}

// ---- The stand-in holds what only 1Password does (the rest: tests/users_api_contract.rs) ----

#[tokio::test]
async fn the_stand_in_refuses_a_suspension_1password_refuses_with_code_7() {
    let op = FakeOnePassword::start().await;
    op.add_user(&user_id(1), "a@example.com", "A", "ACTIVE");
    op.fail_user(&user_id(1), 403, "no_owner_remain");

    let refused = Soar::at_onepassword(&op)
        .post_once(&user_id(1), "suspend")
        .await;

    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["code"], 7);
    assert_eq!(refused.body["message"], "no_owner_remain");
}

#[tokio::test]
async fn the_stand_in_never_suspends_an_externally_managed_admin_or_the_last_owner() {
    let op = FakeOnePassword::start().await;
    op.add(SeedUser {
        role: Role::Admin,
        externally_managed: true,
        ..SeedUser::member(&user_id(1), "eam@example.com", "EAM", "ACTIVE")
    });
    op.add(SeedUser {
        role: Role::Owner,
        ..SeedUser::member(&user_id(2), "owner@example.com", "Owner", "ACTIVE")
    });
    let client = client_for(&op);

    let eam = client
        .suspend(&OnePasswordUserId::parse(&user_id(1)).unwrap())
        .await;
    let owner = client
        .suspend(&OnePasswordUserId::parse(&user_id(2)).unwrap())
        .await;

    assert_eq!(eam.unwrap_err().refusal(), Some(Refusal::ExternallyManaged));
    assert_eq!(owner.unwrap_err().refusal(), Some(Refusal::LastOwner));
    assert_eq!(op.user_state(&user_id(1)).as_deref(), Some("ACTIVE"));
    assert_eq!(op.user_state(&user_id(2)).as_deref(), Some("ACTIVE"));
}

// ---- The client follows it ----

#[tokio::test]
async fn the_client_lists_without_a_filter_and_gets_both_states() {
    let op = FakeOnePassword::start().await;
    op.add_user(&user_id(1), "a@example.com", "A", "ACTIVE");
    op.add_user(&user_id(2), "s@example.com", "S", "SUSPENDED");
    let client = client_for(&op);

    let users = client.list_users().await.unwrap();

    assert_eq!(users.len(), 2);
    for request in op.requests().iter().filter(|r| r.method == "GET") {
        let query = request.query.clone().unwrap_or_default();
        assert!(
            !query.contains("filter"),
            "the client sent a filter: {query}"
        );
    }
}

#[tokio::test]
async fn an_email_lookup_across_three_pages_of_25_finds_a_user_on_page_three() {
    let op = FakeOnePassword::start().await;
    op.cap_pages_at(25);
    seed_members(&op, 70);
    let client = client_for(&op);

    let found = client
        .find_by_email(&email("user60@example.com"))
        .await
        .unwrap();

    assert_eq!(found.and_then(|u| u.id), Some(user_id(60)));
    let listings = op
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/users"))
        .count();
    assert_eq!(listings, 3);
}

#[tokio::test]
async fn a_page_with_users_lacking_a_display_name_or_an_email_still_resolves_the_others() {
    let op = FakeOnePassword::start().await;
    op.add(SeedUser {
        email: None,
        ..SeedUser::member(&user_id(1), "", "No Email", "ACTIVE")
    });
    op.add(SeedUser {
        display_name: None,
        ..SeedUser::member(&user_id(2), "noname@example.com", "", "ACTIVE")
    });
    op.add_user(&user_id(3), "plain@example.com", "Plain", "SUSPENDED");
    let client = client_for(&op);

    let nameless = client
        .find_by_email(&email("noname@example.com"))
        .await
        .unwrap();
    let plain = client
        .find_by_email(&email("plain@example.com"))
        .await
        .unwrap();

    assert_eq!(nameless.map(|u| u.display_name), Some(None));
    assert_eq!(plain.map(|u| u.state), Some(UserState::Suspended));
}

#[tokio::test]
async fn a_user_in_state_unspecified_is_read_as_such() {
    let op = FakeOnePassword::start().await;
    op.add_user(
        &user_id(1),
        "invited@example.com",
        "Invited",
        "STATE_UNSPECIFIED",
    );
    let client = client_for(&op);

    let user = client
        .get_user(&OnePasswordUserId::parse(&user_id(1)).unwrap())
        .await
        .unwrap();

    assert_eq!(user.state, UserState::StateUnspecified);
}

#[tokio::test]
async fn an_empty_next_page_token_on_the_last_page_ends_the_walk() {
    let op = FakeOnePassword::start().await;
    op.cap_pages_at(25);
    seed_members(&op, 50);
    let client = client_for(&op);

    let users = client.list_users().await.unwrap();

    assert_eq!(users.len(), 50);
    assert_eq!(
        op.requests()
            .iter()
            .filter(|r| r.path.ends_with("/users"))
            .count(),
        2
    );
}

#[tokio::test]
async fn an_absent_next_page_token_on_the_last_page_ends_the_walk_too() {
    let op = FakeOnePassword::start().await;
    op.cap_pages_at(25);
    op.end_listings_with(LastPage::NoToken);
    seed_members(&op, 30);
    let client = client_for(&op);

    let users = client.list_users().await.unwrap();

    assert_eq!(users.len(), 30);
}

#[tokio::test]
async fn grpc_codes_in_error_bodies_sort_errors_into_our_kinds() {
    let op = FakeOnePassword::start().await;
    op.add_user(&user_id(1), "a@example.com", "A", "ACTIVE");
    let client = client_for(&op);
    let id = OnePasswordUserId::parse(&user_id(1)).unwrap();

    op.fail_next(1, 503, Some(2));
    let unavailable = client.get_user(&id).await.unwrap_err();
    op.fail_next(1, 400, None);
    let invalid = client.get_user(&id).await.unwrap_err();
    let missing = client
        .get_user(&OnePasswordUserId::parse(&user_id(9)).unwrap())
        .await
        .unwrap_err();

    assert!(matches!(
        unavailable,
        OpError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(2)
    ));
    assert!(matches!(
        invalid,
        OpError::Permanent {
            status: 400,
            code: Some(3),
            ..
        }
    ));
    assert_eq!(missing, OpError::NotFound);
}

#[tokio::test]
async fn every_request_the_client_sends_is_an_operation_of_the_published_api() {
    let op = FakeOnePassword::start().await;
    op.cap_pages_at(2);
    seed_members(&op, 5);
    let client = client_for(&op);
    let id = OnePasswordUserId::parse(&user_id(1)).unwrap();

    client
        .find_by_email(&email("user4@example.com"))
        .await
        .unwrap();
    client.get_user(&id).await.unwrap();
    client.suspend(&id).await.unwrap();
    client.reactivate(&id).await.unwrap();
    assert!(client.revoke_token().await.unwrap());

    let requests = op.requests();
    assert!(requests.len() >= 8, "the walk made every kind of call");
    for request in &requests {
        assert!(
            PUBLISHED
                .iter()
                .any(|(method, template)| *method == request.method
                    && matches_template(template, &request.path, "v1beta1")),
            "{} {} is not in the published API",
            request.method,
            request.path
        );
        let parameters = serde_urlencoded::from_str::<Vec<(String, String)>>(
            request.query.as_deref().unwrap_or_default(),
        )
        .unwrap();
        for (name, _) in parameters {
            assert!(
                LIST_PARAMETERS.contains(&name.as_str()),
                "unpublished parameter {name}"
            );
        }
        let agent = request.user_agent.clone().unwrap_or_default();
        assert!(agent.starts_with("countersign/"), "User-Agent {agent:?}");
    }
}

#[tokio::test]
async fn the_published_path_templates_match_only_their_own_operations() {
    let user = "/v1beta1/accounts/ACC/users/ID";
    assert!(matches_template(PUBLISHED[3].1, user, "v1beta1"));
    assert!(!matches_template(PUBLISHED[4].1, user, "v1beta1"));
    assert!(matches_template(
        PUBLISHED[4].1,
        "/v1beta1/accounts/ACC/users/ID:suspend",
        "v1beta1"
    ));
    assert!(!matches_template(
        PUBLISHED[3].1,
        "/v1beta1/accounts/ACC/users/ID:suspend",
        "v1beta1"
    ));
    assert!(!matches_template(
        PUBLISHED[2].1,
        "/v1/accounts/ACC/users",
        "v1beta1"
    ));
}

// ---- Through the whole product ----

#[tokio::test]
async fn op_api_version_v1_changes_every_path() {
    let op = FakeOnePassword::start_at_version("v1").await;
    let app = spawn_app_on(op).await;
    let id = app.propose_id(&suspend_alice()).await;

    app.click(BOB, "approve", &id).await;
    app.wait_for_status(&id, Status::Executed).await;
    app.shut_down().await;

    let requests = app.op.requests();
    assert!(requests.iter().any(|r| r.path.ends_with(":suspend")));
    assert!(requests.iter().any(|r| r.path.ends_with("/oauth2/revoke")));
    for request in requests {
        assert!(
            PUBLISHED
                .iter()
                .any(|(method, t)| *method == request.method
                    && matches_template(t, &request.path, "v1")),
            "{} {}",
            request.method,
            request.path
        );
    }
}

#[tokio::test]
async fn the_access_token_is_revoked_at_graceful_shutdown() {
    let app = spawn_app().await;
    app.propose_id(&suspend_alice()).await;
    let issued = app.op.live_tokens();
    assert_eq!(issued.len(), 1, "the lookup fetched one token");

    app.shut_down().await;

    assert_eq!(app.op.revoked_tokens(), issued);
    assert!(app.op.live_tokens().is_empty());
}
