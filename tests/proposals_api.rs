//! The automation API: what it accepts, what it refuses and how. Every refusal is problem
//! JSON and leaves the ledger as it was.

mod support;

use countersign::ledger::Scope;
use serde_json::{json, Value};
use support::app::*;

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    (status, response.json().await.unwrap())
}

/// POSTs a body as-is, with the given content type.
async fn post_raw(
    app: &TestApp,
    token: &str,
    content_type: &str,
    body: &'static str,
) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/proposals", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_valid_proposal_is_created_pending() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;

    let response = app.propose_with(&token, &suspend_alice()).await;

    assert_eq!(response.status(), 201);
    let proposal: Value = response.json().await.unwrap();
    assert_eq!(proposal["status"], "pending");
    assert_eq!(proposal["target"]["id"], ALICE);
    assert_eq!(proposal["target"]["state"], "ACTIVE");
    assert_eq!(proposal["requester"]["kind"], "integration");
    assert_eq!(proposal["requester"]["name"], "tines");
    assert_eq!(proposal["approvals_required"], 1);
}

#[tokio::test]
async fn text_with_newlines_and_tabs_is_kept_as_sent_on_either_engine() {
    // Other control characters (NUL, escapes) are refused: tests/free_text.rs.
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let mut body = suspend_alice();
    let reason = "Token reuse\nfrom two hosts\tat once";
    body["reason"] = reason.into();
    body["source"]["alert_id"] = "ldt:\t8f2c".into();

    let response = app.propose_with(&token, &body).await;

    assert_eq!(response.status(), 201);
    let proposal: Value = response.json().await.unwrap();
    let id = proposal["id"].as_str().unwrap();
    app.card_ts(id).await;
    let stored = app
        .ledger
        .proposal(countersign::domain::ProposalId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.reason.as_str(), reason);
    assert_eq!(stored.source.alert_id.as_deref(), Some("ldt:\t8f2c"));
    let events = app.ledger.events(0, 1000).await.unwrap();
    let created = events
        .iter()
        .find(|e| e.kind == "proposal.created")
        .unwrap();
    assert_eq!(created.payload["reason"], reason);
}

#[tokio::test]
async fn invalid_bodies_get_problem_json_and_record_nothing() {
    let app = spawn_app().await;
    let token = app
        .token(&[Scope::ProposeSuspend, Scope::ProposeRestore])
        .await;
    let before = app.event_count().await;
    let with = |pointer: &str, value: Value| {
        let mut body = suspend_alice();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (with("/action", json!("delete")), "/action"),
        (
            with("/user", json!({"email": "not-an-email"})),
            "/user/email",
        ),
        (
            with("/user", json!({"email": "a@example.com", "id": ALICE})),
            "/user",
        ),
        (with("/user", json!({"id": "short"})), "/user/id"),
        (with("/reason", json!("too short")), "/reason"),
        (
            with("/source/alert_url", json!("http://falcon.example.com/x")),
            "/source/alert_url",
        ),
        (
            with(
                "/source/alert_url",
                json!("https://evil.example/x|https://falcon.example.com"),
            ),
            "/source/alert_url",
        ),
        (with("/source/platform", json!("  ")), "/source/platform"),
        (
            with("/source/confidence", json!("certain")),
            "/source/confidence",
        ),
        (
            json!({"action": "suspend", "user": {"email": "alice@example.com"}, "reason": "Impossible travel again",
                "source": {"platform": "x"}, "extra": true}),
            "/extra",
        ),
        (
            json!({"action": "suspend", "user": {"email": "alice@example.com"}, "reason": "Impossible travel again",
                "source": {"platform": "x"}, "callback_url": "https://evil.example.net/hook"}),
            "/callback_url",
        ),
    ];
    for (body, pointer) in cases {
        let (status, problem) = problem(app.propose_with(&token, &body).await).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(problem["type"], "urn:countersign:problem:invalid_request");
        assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn an_unknown_field_is_named_in_the_problem() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let mut body = suspend_alice();
    body["approve"] = json!(true);

    let (status, problem) = problem(app.propose_with(&token, &body).await).await;

    assert_eq!(status, 422);
    assert!(
        problem["detail"].as_str().unwrap().contains("approve"),
        "{problem}"
    );
}

#[tokio::test]
async fn unparseable_json_is_a_400() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let response = post_raw(&app, &token, "application/json", "{\"action\": ").await;

    let (status, problem) = problem(response).await;

    assert_eq!(status, 400);
    assert_eq!(problem["code"], "malformed_json");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let response = post_raw(&app, &token, "text/plain", "suspend alice").await;

    assert_eq!(problem(response).await.0, 415);
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let mut body = suspend_alice();
    body["reason"] = json!("x".repeat(70 * 1024));

    assert_eq!(problem(app.propose_with(&token, &body).await).await.0, 413);
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_a_401() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let unsigned = app
        .http
        .post(format!("{}/v1/proposals", app.address))
        .json(&suspend_alice())
        .send()
        .await
        .unwrap();
    assert_eq!(problem(unsigned).await.0, 401);
    assert_eq!(
        problem(app.propose_with("cs_not_a_token", &suspend_alice()).await)
            .await
            .0,
        401
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_token_without_propose_restore_cannot_propose_a_restore() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let before = app.event_count().await;

    let (status, problem) = problem(
        app.propose_with(&token, &restore("mallory@example.com"))
            .await,
    )
    .await;

    assert_eq!(status, 403);
    assert_eq!(problem["code"], "insufficient_scope");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("propose:restore"));
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn an_unknown_1password_user_is_a_422() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let mut body = suspend_alice();
    body["user"] = json!({"email": "nobody@example.com"});

    let (status, problem) = problem(app.propose_with(&token, &body).await).await;

    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["pointer"], "/user/email");
}

#[tokio::test]
async fn a_user_can_be_named_by_1password_id() {
    let app = spawn_app().await;
    let mut body = suspend_alice();
    body["user"] = json!({"id": ALICE});

    let proposal = app.propose(&body).await;

    assert_eq!(proposal["target"]["email"], "alice@example.com");
}

#[tokio::test]
async fn onepassword_being_down_is_a_503_with_retry_after() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    app.op.fail_next(10, 500, None);

    let response = app.propose_with(&token, &suspend_alice()).await;

    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(problem(response).await.0, 503);
}

#[tokio::test]
async fn a_proposing_token_reads_its_own_proposal_but_not_others() {
    let app = spawn_app().await;
    let mine = app.token(&[Scope::ProposeSuspend]).await;
    let other = app.token(&[Scope::ProposeSuspend]).await;
    let reader = app.token(&[Scope::Read]).await;
    let created: Value = app
        .propose_with(&mine, &suspend_alice())
        .await
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}/v1/proposals/{}",
        app.address,
        created["id"].as_str().unwrap()
    );

    let own = app.http.get(&url).bearer_auth(&mine).send().await.unwrap();
    let others = app.http.get(&url).bearer_auth(&other).send().await.unwrap();
    let read = app
        .http
        .get(&url)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();

    assert_eq!(own.status(), 200);
    assert_eq!(others.status(), 404);
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn the_list_is_newest_first_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let reader = app.token(&[Scope::Read]).await;
    let first = app.propose(&suspend_alice()).await;
    let second = app.propose(&restore("mallory@example.com")).await;

    let page: Value = app.get_json("/v1/proposals?limit=1", &reader).await;
    assert_eq!(page["proposals"][0]["id"], second["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_json(&format!("/v1/proposals?limit=1&cursor={cursor}"), &reader)
        .await;
    assert_eq!(next["proposals"][0]["id"], first["id"]);

    let filtered: Value = app.get_json("/v1/proposals?action=restore", &reader).await;
    assert_eq!(filtered["proposals"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_the_proposing_token_can_cancel_and_only_while_pending() {
    let app = spawn_app().await;
    let mine = app.token(&[Scope::ProposeSuspend]).await;
    let other = app.token(&[Scope::ProposeSuspend]).await;
    let created: Value = app
        .propose_with(&mine, &suspend_alice())
        .await
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}/v1/proposals/{}/cancel",
        app.address,
        created["id"].as_str().unwrap()
    );

    assert_eq!(
        app.http
            .post(&url)
            .bearer_auth(&other)
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "another token's proposal is not disclosed"
    );
    let cancelled: Value = app
        .http
        .post(&url)
        .bearer_auth(&mine)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let (status, problem) =
        problem(app.http.post(&url).bearer_auth(&mine).send().await.unwrap()).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "not_pending");
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_limited(&policy_with_ttls("30m", "24h"), test_timing(), 2).await;
    let token = app.token(&[Scope::Read]).await;
    let list = || {
        app.http
            .get(format!("{}/v1/proposals", app.address))
            .bearer_auth(&token)
            .send()
    };

    assert_eq!(list().await.unwrap().status(), 200);
    assert_eq!(list().await.unwrap().status(), 200);
    let limited = list().await.unwrap();

    assert!(limited.headers().contains_key("retry-after"));
    let (status, problem) = problem(limited).await;
    assert_eq!(status, 429);
    assert_eq!(problem["code"], "rate_limited");
}

#[tokio::test]
async fn a_1password_refusal_is_a_502_without_retry_after() {
    let app = spawn_app().await;
    let token = app.token(&[Scope::ProposeSuspend]).await;
    app.op.fail_next(10, 403, None);

    let response = app.propose_with(&token, &suspend_alice()).await;

    assert!(!response.headers().contains_key("retry-after"));
    let (status, problem) = problem(response).await;
    assert_eq!(status, 502);
    assert_eq!(problem["code"], "onepassword_refused");
}

#[tokio::test]
async fn a_token_that_may_not_propose_is_refused_before_its_body_is_read() {
    let app = spawn_app().await;
    let reader = app.token(&[Scope::Read]).await;

    let (status, problem) =
        problem(app.propose_with(&reader, &json!({"nonsense": true})).await).await;

    assert_eq!(status, 403);
    assert_eq!(problem["code"], "insufficient_scope");
}
