//! The 1Password Events API stand-in (audit events), as developer.1password.com publishes the
//! API: reset cursor and cursor, `has_more`, the audit event object, feature-scoped bearer
//! tokens, the error body and the rate limit. It shares a server with the Users API stand-in,
//! whose suspensions and reactivations it reports.

use chrono::{DateTime, SubsecRound, Utc};
use countersign::sandbox::onepassword::{ConsoleActor, FakeOnePassword};
use serde_json::{json, Value};

const ALICE: &str = "ALICE000000000000000000000";
const BOB: &str = "BOB00000000000000000000000";
const AUDIT: &str = "/api/v2/auditevents";
const INTROSPECT: &str = "/api/v2/auth/introspect";

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// `POST /api/v2/auditevents` with the full-featured token.
async fn audit(op: &FakeOnePassword, body: Value) -> Answer {
    audit_as(op, Some(FakeOnePassword::EVENTS_TOKEN), body).await
}

async fn audit_as(op: &FakeOnePassword, token: Option<&str>, body: Value) -> Answer {
    let mut request = http().post(format!("{}{AUDIT}", op.base_url)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

async fn introspect(op: &FakeOnePassword, token: &str) -> Answer {
    send(
        http()
            .get(format!("{}{INTROSPECT}", op.base_url))
            .bearer_auth(token),
    )
    .await
}

/// A reset cursor from before anything happened.
fn from_the_start(limit: usize) -> Value {
    json!({ "limit": limit, "start_time": "2020-01-01T00:00:00Z" })
}

fn uuids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn carol() -> ConsoleActor {
    ConsoleActor {
        uuid: "CAROL00000000000000000000C".into(),
        name: "Carol Owner".into(),
        email: "carol@example.com".into(),
        ip: "203.0.113.7".into(),
        country: "CA".into(),
        region: "Ontario".into(),
        city: "Toronto".into(),
        latitude: Some(43.64),
        longitude: Some(-79.433),
    }
}

fn assert_events_error(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer.body["Error"]["Message"].is_string(),
        "the published Error shape: {}",
        answer.body
    );
}

/// Seeds `n` active members and suspends each in the console: `n` audit events.
async fn with_suspensions(n: usize) -> FakeOnePassword {
    let op = FakeOnePassword::start().await;
    for i in 0..n {
        let id = format!("USER{i:022}");
        op.add_user(
            &id,
            &format!("u{i}@example.com"),
            &format!("User {i}"),
            "ACTIVE",
        );
        op.console_set_state(&id, "SUSPENDED", carol());
    }
    op
}

/// A Users API access token, as the partner integration gets one.
async fn users_api_token(op: &FakeOnePassword) -> String {
    let token: Value = http()
        .post(format!("{}/{}/users/oauth2/token", op.base_url, op.version))
        .header("User-Agent", "events-test/1.0")
        .basic_auth(
            FakeOnePassword::CLIENT_ID,
            Some(FakeOnePassword::CLIENT_SECRET),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

/// Suspends through the Users API, as the partner integration does.
async fn suspend_through_the_users_api(op: &FakeOnePassword, id: &str) -> u16 {
    let token = users_api_token(op).await;
    let url = format!(
        "{}/{}/accounts/{}/users/{id}:suspend",
        op.base_url,
        op.version,
        FakeOnePassword::ACCOUNT_ID
    );
    http()
        .post(url)
        .header("User-Agent", "events-test/1.0")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_reset_cursor_then_a_cursor_walk_returns_every_event_once() {
    let op = with_suspensions(7).await;

    let mut answer = audit(&op, from_the_start(3)).await;
    let mut seen = uuids(&answer.body["items"]);
    while answer.body["has_more"] == json!(true) {
        answer = audit(&op, json!({ "cursor": answer.body["cursor"] })).await;
        assert_eq!(answer.status, 200);
        seen.extend(uuids(&answer.body["items"]));
    }

    assert_eq!(
        seen,
        uuids(&json!(op.audit_events())),
        "all, once, oldest first"
    );
    assert_eq!(seen.len(), 7);
}

#[tokio::test]
async fn has_more_is_true_while_the_limit_leaves_matching_events_behind() {
    let op = with_suspensions(3).await;

    let first = audit(&op, from_the_start(2)).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["has_more"], json!(true));
    let second = audit(&op, json!({ "cursor": first.body["cursor"] })).await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["has_more"], json!(false));
}

#[tokio::test]
async fn a_cursor_with_nothing_new_keeps_its_place_and_later_sees_new_events() {
    let op = with_suspensions(1).await;
    let first = audit(&op, from_the_start(10)).await;
    let cursor = first.body["cursor"].clone();

    let idle = audit(&op, json!({ "cursor": cursor })).await;
    assert_eq!(idle.body["items"], json!([]));
    assert_eq!(idle.body["has_more"], json!(false));
    assert_eq!(idle.body["cursor"], cursor, "the same position");

    op.console_set_state("USER0000000000000000000000", "ACTIVE", carol());
    let later = audit(&op, json!({ "cursor": cursor })).await;
    let items = later.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "reactive");
}

#[tokio::test]
async fn start_time_and_end_time_bound_a_reset_cursor() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");
    op.add_user(BOB, "bob@example.com", "Bob", "ACTIVE");
    op.console_set_state(ALICE, "SUSPENDED", carol());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let between = Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    op.console_set_state(BOB, "SUSPENDED", carol());

    let after = audit(&op, json!({ "start_time": between })).await;
    assert_eq!(after.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(after.body["items"][0]["object_uuid"], BOB);
    let before = audit(&op, json!({ "end_time": between })).await;
    assert_eq!(before.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(before.body["items"][0]["object_uuid"], ALICE);
    // No start_time: an hour ago, which holds both.
    let defaults = audit(&op, json!({})).await;
    assert_eq!(defaults.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_console_reactivation_reports_the_actor_session_ip_and_location() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "SUSPENDED");
    let before = Utc::now();

    op.console_set_state(ALICE, "ACTIVE", carol());

    assert_eq!(op.user_state(ALICE).as_deref(), Some("ACTIVE"));
    let answer = audit(&op, from_the_start(10)).await;
    let event = &answer.body["items"][0];
    assert_eq!(event["action"], "reactive");
    assert_eq!(event["object_type"], "user");
    assert_eq!(event["object_uuid"], ALICE);
    let alice = json!({ "uuid": ALICE, "name": "Alice", "email": "alice@example.com" });
    assert_eq!(event["object_details"], alice);
    assert_eq!(event["actor_uuid"], "CAROL00000000000000000000C");
    let carol_details = json!({ "uuid": "CAROL00000000000000000000C", "name": "Carol Owner",
                                "email": "carol@example.com" });
    assert_eq!(event["actor_details"], carol_details);
    assert_eq!(event["session"]["ip"], "203.0.113.7");
    let location = json!({ "country": "CA", "region": "Ontario", "city": "Toronto",
                           "latitude": 43.64, "longitude": -79.433 });
    assert_eq!(event["location"], location);
    let at = DateTime::parse_from_rfc3339(event["timestamp"].as_str().unwrap()).unwrap();
    assert!(at >= before.trunc_subsecs(6) && at <= Utc::now());
}

#[tokio::test]
async fn a_users_api_suspension_is_reported_with_the_service_account_as_actor() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");

    assert_eq!(suspend_through_the_users_api(&op, ALICE).await, 200);

    let answer = audit(&op, from_the_start(10)).await;
    let event = &answer.body["items"][0];
    assert_eq!(event["action"], "suspend");
    assert_eq!(event["object_uuid"], ALICE);
    assert_eq!(event["actor_uuid"], FakeOnePassword::SERVICE_ACCOUNT_UUID);
    let actor = json!({ "uuid": FakeOnePassword::SERVICE_ACCOUNT_UUID,
                        "name": "Users API integration" });
    assert_eq!(
        event["actor_details"], actor,
        "a service account has no email"
    );
    assert_eq!(event["session"]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn suspending_a_suspended_user_through_the_users_api_reports_nothing_new() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");

    assert_eq!(suspend_through_the_users_api(&op, ALICE).await, 200);
    assert_eq!(suspend_through_the_users_api(&op, ALICE).await, 200);

    assert_eq!(op.audit_events().len(), 1, "one change, one event");
}

#[tokio::test]
async fn set_state_changes_a_user_and_reports_nothing() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");

    op.set_state(ALICE, "SUSPENDED");
    op.console_set_state(ALICE, "SUSPENDED", carol());

    assert_eq!(op.user_state(ALICE).as_deref(), Some("SUSPENDED"));
    assert!(op.audit_events().is_empty());
    let answer = audit(&op, from_the_start(10)).await;
    assert_eq!(answer.body["items"], json!([]));
}

#[tokio::test]
async fn introspection_lists_the_token_features_and_account() {
    let op = FakeOnePassword::start().await;

    let full = introspect(&op, FakeOnePassword::EVENTS_TOKEN).await;
    assert_eq!(full.status, 200);
    assert_eq!(
        full.body["features"],
        json!(["auditevents", "itemusages", "signinattempts"])
    );
    assert_eq!(full.body["account_uuid"], FakeOnePassword::ACCOUNT_ID);
    assert!(full.body["uuid"].is_string());
    DateTime::parse_from_rfc3339(full.body["issued_at"].as_str().unwrap()).unwrap();
    let partial = introspect(&op, FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT).await;
    assert_eq!(
        partial.body["features"],
        json!(["signinattempts", "itemusages"])
    );
}

#[tokio::test]
async fn a_token_without_the_auditevents_feature_is_refused_on_auditevents() {
    let op = with_suspensions(1).await;

    let token = Some(FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT);
    let answer = audit_as(&op, token, from_the_start(10)).await;

    // "HTTP status codes" publishes no 403: a token not scoped for the resource is a 401.
    assert_events_error(&answer, 401);
}

#[tokio::test]
async fn a_missing_or_unknown_bearer_token_is_unauthorized() {
    let op = with_suspensions(1).await;

    assert_events_error(&audit_as(&op, None, from_the_start(10)).await, 401);
    assert_events_error(
        &audit_as(&op, Some("nonsense"), from_the_start(10)).await,
        401,
    );
    assert_events_error(&introspect(&op, "nonsense").await, 401);
}

#[tokio::test]
async fn a_limit_outside_1_to_1000_is_a_bad_request() {
    let op = FakeOnePassword::start().await;

    for limit in [json!(0), json!(1001), json!(-1), json!(2.5), json!("10")] {
        let body = json!({ "limit": limit, "start_time": "2020-01-01T00:00:00Z" });
        assert_events_error(&audit(&op, body).await, 400);
    }
    assert_eq!(audit(&op, from_the_start(1)).await.status, 200);
    assert_eq!(audit(&op, from_the_start(1000)).await.status, 200);
}

#[tokio::test]
async fn a_garbled_or_never_issued_cursor_is_a_bad_request() {
    let op = with_suspensions(1).await;
    let issued = audit(&op, from_the_start(10)).await.body["cursor"].clone();
    let issued = issued.as_str().unwrap();

    for cursor in [
        json!("not base64 at all!"),
        json!(format!("{issued}x")),
        // The published example cursor, never issued here.
        json!("aGVsbG8hIGlzIGl0IG1lIHlvdSBhcmUgbG9va2luZyBmb3IK"),
        json!(42),
    ] {
        assert_events_error(&audit(&op, json!({ "cursor": cursor })).await, 400);
    }
    assert_events_error(&audit(&op, json!({ "start_time": "yesterday" })).await, 400);
}

#[tokio::test]
async fn beyond_the_rate_a_token_gets_429_with_retry_after() {
    let op = FakeOnePassword::start().await;
    op.limit_events_to(3);

    for _ in 0..3 {
        assert_eq!(audit(&op, from_the_start(10)).await.status, 200);
    }
    let refused = audit(&op, from_the_start(10)).await;

    assert_events_error(&refused, 429);
    let wait: u64 = refused.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&wait), "within the minute: {wait}");
    let other = introspect(&op, FakeOnePassword::EVENTS_TOKEN_WITHOUT_AUDIT).await;
    assert_eq!(other.status, 200, "the limit is per token");
}

#[tokio::test]
async fn injected_failures_answer_their_status_then_the_api_recovers() {
    let op = FakeOnePassword::start().await;
    op.fail_next_events(1, 500, Some(7));

    let failed = audit(&op, from_the_start(10)).await;
    assert_events_error(&failed, 500);
    assert_eq!(failed.retry_after.as_deref(), Some("7"));
    assert_eq!(audit(&op, from_the_start(10)).await.status, 200);
    assert_eq!(op.events_requests(), 2);
}

#[tokio::test]
async fn events_api_requests_need_no_user_agent_and_stay_out_of_the_users_api_log() {
    let op = FakeOnePassword::start().await;

    let answer = audit(&op, from_the_start(10)).await;

    assert_eq!(answer.status, 200, "reqwest sends no User-Agent by default");
    assert!(op.requests().is_empty());
    assert_eq!(op.events_request_log()[0].path, AUDIT);
}

#[tokio::test]
async fn users_api_and_events_api_tokens_do_not_cross() {
    let op = FakeOnePassword::start().await;
    op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");

    let url = format!(
        "{}/{}/accounts/{}/users/{ALICE}",
        op.base_url,
        op.version,
        FakeOnePassword::ACCOUNT_ID
    );
    let users_api = http()
        .get(url)
        .header("User-Agent", "events-test/1.0")
        .bearer_auth(FakeOnePassword::EVENTS_TOKEN);
    assert_eq!(send(users_api).await.status, 401);
    let oauth = users_api_token(&op).await;
    assert_events_error(&audit_as(&op, Some(&oauth), from_the_start(10)).await, 401);
}
