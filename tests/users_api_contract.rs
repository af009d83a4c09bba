//! The 1Password Users API's published contract, one suite run against two targets: the
//! stand-in that holds 1Password's reference pages (`stand_in::…`), and countersign's Users API
//! gateway in front of it (`gateway::…`). An integration built for 1Password must not see a
//! difference in tokens, revocation, listing, paging, filters, reads, error bodies or the
//! `User-Agent` rule.

mod support;

use countersign::ledger::GatewayPermission;
use serde_json::{json, Value};
use support::app::{spawn_app, TestApp, ALICE, MALLORY};
use support::fake_onepassword::FakeOnePassword;
use support::soar::{Answer, Soar};

/// A contract test's target, with the same users in both: Alice (active) and Mallory
/// (suspended), as every test app starts.
struct Target {
    /// The gateway's app (which owns its stand-in), or the stand-in alone.
    app: Option<TestApp>,
    op: Option<FakeOnePassword>,
    base_url: String,
    client_id: String,
    client_secret: String,
}

impl Target {
    async fn stand_in() -> Self {
        let op = FakeOnePassword::start().await;
        op.add_user(ALICE, "alice@example.com", "Alice", "ACTIVE");
        op.add_user(MALLORY, "mallory@example.com", "Mallory", "SUSPENDED");
        Self {
            base_url: op.base_url.clone(),
            client_id: FakeOnePassword::CLIENT_ID.into(),
            client_secret: FakeOnePassword::CLIENT_SECRET.into(),
            op: Some(op),
            app: None,
        }
    }

    async fn gateway() -> Self {
        let app = spawn_app().await;
        let (client_id, client_secret) = app
            .gateway_client("contract-suite", &GatewayPermission::ALL)
            .await;
        Self {
            base_url: app.address.clone(),
            client_id,
            client_secret,
            op: None,
            app: Some(app),
        }
    }

    /// 1Password's stand-in, where the users are.
    fn op(&self) -> &FakeOnePassword {
        match (&self.app, &self.op) {
            (Some(app), _) => &app.op,
            (None, Some(op)) => op,
            (None, None) => unreachable!("a target has a stand-in"),
        }
    }

    fn soar(&self) -> Soar {
        Soar::new(
            &self.base_url,
            &self.op().version,
            &self.client_id,
            &self.client_secret,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}{path}", self.base_url, self.op().version)
    }
}

/// A 26-character id for the n-th seeded user.
fn user_id(n: usize) -> String {
    format!("USER{n:022}")
}

fn seed_members(op: &FakeOnePassword, count: usize) {
    for n in 0..count {
        let email = format!("user{n}@example.com");
        op.add_user(&user_id(n), &email, &format!("User {n}"), "ACTIVE");
    }
}

fn count(answer: &Answer) -> usize {
    answer.body["results"].as_array().unwrap().len()
}

fn product_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent("contract-test/1.0")
        .build()
        .unwrap()
}

/// Generates each contract test once per target.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// 1Password's stand-in holds the published contract.
        mod stand_in {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::stand_in().await).await;
                }
            )*
        }
        /// countersign's gateway holds it too.
        mod gateway {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Target::gateway().await).await;
                }
            )*
        }
    };
}

contract!(
    a_token_is_a_bearer_token_for_900_seconds_with_or_without_scope_openid,
    a_token_request_with_another_grant_type_or_scope_is_refused,
    a_token_request_with_wrong_client_credentials_is_invalid_client,
    revocation_answers_200_even_for_an_unknown_token_and_401_for_bad_credentials,
    a_revoked_token_is_refused_with_code_16,
    any_filter_but_the_two_documented_ones_is_invalid_argument,
    each_documented_filter_lists_its_state_and_none_lists_both,
    pages_are_25_by_default_and_more_than_1000_is_invalid_argument,
    page_tokens_are_opaque_base64_and_the_last_page_has_an_empty_one,
    a_page_token_never_issued_is_invalid_argument,
    a_list_walk_by_page_token_returns_every_user_once,
    a_user_is_read_by_id,
    an_unknown_user_is_not_found_with_code_5,
    another_account_is_not_found,
    a_request_without_a_product_user_agent_is_invalid_argument,
);

async fn a_token_is_a_bearer_token_for_900_seconds_with_or_without_scope_openid(target: Target) {
    let soar = target.soar();

    let plain = soar
        .request_token(&[("grant_type", "client_credentials")])
        .await;
    let openid = soar
        .request_token(&[("grant_type", "client_credentials"), ("scope", "openid")])
        .await;

    for answer in [plain, openid] {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["token_type"], "bearer");
        assert_eq!(answer.body["expires_in"], 900);
        assert!(!answer.body["access_token"].as_str().unwrap().is_empty());
    }
}

async fn a_token_request_with_another_grant_type_or_scope_is_refused(target: Target) {
    let soar = target.soar();

    let grant = soar.request_token(&[("grant_type", "password")]).await;
    let scope = soar
        .request_token(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .await;

    assert_eq!(grant.status, 400);
    assert_eq!(grant.body["error"], "unsupported_grant_type");
    assert_eq!(scope.status, 400);
    assert_eq!(scope.body["error"], "invalid_scope");
}

async fn a_token_request_with_wrong_client_credentials_is_invalid_client(target: Target) {
    let wrong = Soar::new(
        &target.base_url,
        &target.op().version,
        &target.client_id,
        "not-the-secret",
    );

    let answer = wrong
        .request_token(&[("grant_type", "client_credentials")])
        .await;

    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error"], "invalid_client");
}

async fn revocation_answers_200_even_for_an_unknown_token_and_401_for_bad_credentials(
    target: Target,
) {
    let http = product_client();
    let url = target.url("/users/oauth2/revoke");

    let unknown = http
        .post(&url)
        .basic_auth(&target.client_id, Some(&target.client_secret))
        .form(&[("token", "never-issued")])
        .send()
        .await
        .unwrap();
    let bad_client = http
        .post(&url)
        .basic_auth(&target.client_id, Some("wrong"))
        .form(&[("token", "never-issued")])
        .send()
        .await
        .unwrap();

    assert_eq!(unknown.status(), 200);
    assert_eq!(bad_client.status(), 401);
}

async fn a_revoked_token_is_refused_with_code_16(target: Target) {
    let soar = target.soar();
    let token = soar.token().await;

    assert_eq!(soar.revoke(&token).await.status, 200);
    let answer = soar.list(&[]).await;

    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body["code"], 16,
        "UNAUTHENTICATED: {:?}",
        answer.body
    );
}

async fn any_filter_but_the_two_documented_ones_is_invalid_argument(target: Target) {
    let answer = target
        .soar()
        .list(&[("filter", "user.isActive() || user.isSuspended()")])
        .await;

    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["code"], 3, "InvalidArgument: {:?}", answer.body);
    assert!(answer.body["message"]
        .as_str()
        .unwrap()
        .contains("invalid filter"));
    assert_eq!(answer.body["details"], json!([]));
}

async fn each_documented_filter_lists_its_state_and_none_lists_both(target: Target) {
    let soar = target.soar();

    let active = soar.list(&[("filter", "user.isActive()")]).await;
    let suspended = soar.list(&[("filter", "user.isSuspended()")]).await;
    let empty = soar.list(&[("filter", "")]).await;
    let absent = soar.list(&[]).await;

    assert_eq!(active.body["results"][0]["state"], "ACTIVE");
    assert_eq!(suspended.body["results"][0]["state"], "SUSPENDED");
    assert_eq!((count(&active), count(&suspended)), (1, 1));
    assert_eq!((count(&empty), count(&absent)), (2, 2));
}

async fn pages_are_25_by_default_and_more_than_1000_is_invalid_argument(target: Target) {
    seed_members(target.op(), 30);
    let soar = target.soar();

    let first = soar.list(&[]).await;
    let too_many = soar.list(&[("max_page_size", "1001")]).await;

    assert_eq!(count(&first), 25);
    assert_eq!(
        (too_many.status, too_many.body["code"].clone()),
        (400, json!(3))
    );
}

async fn page_tokens_are_opaque_base64_and_the_last_page_has_an_empty_one(target: Target) {
    seed_members(target.op(), 30);
    let soar = target.soar();

    let first = soar.list(&[]).await;
    let token = first.body["next_page_token"].as_str().unwrap().to_owned();
    let last = soar.list(&[("page_token", &token)]).await;

    let base64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    assert!(
        token.chars().all(base64) && token.parse::<u64>().is_err(),
        "{token}"
    );
    assert_eq!(count(&last), 7);
    assert_eq!(last.body["next_page_token"], "");
}

async fn a_page_token_never_issued_is_invalid_argument(target: Target) {
    seed_members(target.op(), 30);

    let answer = target.soar().list(&[("page_token", "25")]).await;

    assert_eq!(
        (answer.status, answer.body["code"].clone()),
        (400, json!(3))
    );
}

async fn a_list_walk_by_page_token_returns_every_user_once(target: Target) {
    seed_members(target.op(), 11);

    let users = target.soar().list_all(4).await;

    let mut ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 13);
}

async fn a_user_is_read_by_id(target: Target) {
    let answer = target.soar().get(MALLORY).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["id"], MALLORY);
    assert_eq!(answer.body["email"], "mallory@example.com");
    assert_eq!(answer.body["state"], "SUSPENDED");
}

async fn an_unknown_user_is_not_found_with_code_5(target: Target) {
    let answer = target.soar().get(&user_id(9)).await;

    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["code"], 5, "NOT_FOUND: {:?}", answer.body);
}

async fn another_account_is_not_found(target: Target) {
    let soar = target.soar();
    let token = soar.token().await;

    let response = product_client()
        .get(target.url("/accounts/ZZZZZZZZZZZZZZZZZZZZZZZZZZ/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 5);
}

async fn a_request_without_a_product_user_agent_is_invalid_argument(target: Target) {
    let response = reqwest::Client::new()
        .post(target.url("/users/oauth2/token"))
        .basic_auth(&target.client_id, Some(&target.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 3);
}
