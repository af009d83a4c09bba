//! A real HTTP fake of the 1Password Users API for Partners (v1beta1), DESIGN §5.
//!
//! It checks credentials and tokens the way the real service does, keeps users in memory,
//! records every request, and can inject failures, token expiry and latency.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

const TOKEN_PATH: &str = "/v1beta1/users/oauth2/token";
const ACCOUNTS_PREFIX: &str = "/v1beta1/accounts/";
const TOKEN_LIFETIME_SECS: u64 = 900;
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

pub struct FakeOnePassword {
    /// "http://127.0.0.1:PORT", no trailing slash.
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
    /// When the request reached the fake, before its body was read (for latency benchmarks).
    pub received_at: std::time::Instant,
}

#[derive(Default)]
struct FakeState {
    /// Insertion order is the listing order.
    users: Vec<User>,
    valid_tokens: HashSet<String>,
    requests: Vec<RecordedRequest>,
    injected: Option<InjectedFailure>,
    user_failures: HashMap<String, (u16, String)>,
    delay: Duration,
}

#[derive(Clone)]
struct User {
    id: String,
    email: String,
    display_name: String,
    state: String,
}

struct InjectedFailure {
    remaining: usize,
    status: u16,
    retry_after: Option<u64>,
}

type Shared = Arc<Mutex<FakeState>>;

impl FakeOnePassword {
    pub const ACCOUNT_ID: &'static str = "A1B2C3D4E5F6G7H8J9K0L1M2N3";
    pub const CLIENT_ID: &'static str = "countersign-test-client";
    pub const CLIENT_SECRET: &'static str = "op-secret-for-tests";

    pub async fn start() -> Self {
        let state = Shared::default();
        let accounts = Router::new()
            .route("/v1beta1/accounts/{account}/users", get(list_users))
            // `{user}` captures the whole last segment, so "ID:suspend" arrives here too.
            .route(
                "/v1beta1/accounts/{account}/users/{user}",
                get(get_user).post(mutate_user),
            )
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                guard_accounts,
            ));
        let app = Router::new()
            .route(TOKEN_PATH, post(issue_token))
            .merge(accounts)
            .layer(middleware::from_fn_with_state(state.clone(), record))
            .with_state(state.clone());

        let (base_url, server) = super::serve_on_loopback(app, "fake 1Password").await;
        Self {
            base_url,
            state,
            server,
        }
    }

    /// Adds a user (or replaces the one with the same id). `state` is "ACTIVE" or "SUSPENDED".
    pub fn add_user(&self, id: &str, email: &str, display_name: &str, state: &str) {
        let user = User {
            id: id.to_owned(),
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            state: state.to_owned(),
        };
        let mut s = self.lock();
        match s.users.iter_mut().find(|u| u.id == id) {
            Some(existing) => *existing = user,
            None => s.users.push(user),
        }
    }

    pub fn user_state(&self, id: &str) -> Option<String> {
        self.lock()
            .users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.state.clone())
    }

    /// Every request received, in order (token requests included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Number of `POST .../users/{id}:{verb}` received (`verb` = "suspend" | "reactivate"),
    /// whether or not they succeeded.
    pub fn mutation_count(&self, verb: &str) -> usize {
        let suffix = format!(":{verb}");
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(&suffix))
            .count()
    }

    /// Number of token requests received, whether or not they succeeded.
    pub fn token_requests(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == TOKEN_PATH)
            .count()
    }

    /// Every token issued so far now gets 401 (simulates expiry mid-run).
    pub fn revoke_tokens(&self) {
        self.lock().valid_tokens.clear();
    }

    /// The next `n` requests to `/v1beta1/accounts/...` answer `status` with the 1Password
    /// error body (and `Retry-After` if given) without touching state. They are still recorded.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().injected = Some(InjectedFailure {
            remaining: n,
            status,
            retry_after,
        });
    }

    /// Every suspend/reactivate of this user answers this error, e.g. 403 "no_owner_remain".
    pub fn fail_user(&self, id: &str, status: u16, message: &str) {
        self.lock()
            .user_failures
            .insert(id.to_owned(), (status, message.to_owned()));
    }

    /// Lifts a `fail_user` fault, as when an admin fixes what 1Password refused.
    pub fn clear_user_failure(&self, id: &str) {
        self.lock().user_failures.remove(id);
    }

    /// Every `/v1beta1/accounts/...` answer waits this long first.
    pub fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake 1Password state poisoned")
    }
}

impl Drop for FakeOnePassword {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl User {
    fn to_json(&self, account: &str) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "state": self.state,
            "create_time": "2024-01-01T00:00:00Z",
            "path": format!("accounts/{account}/users/{}", self.id),
        })
    }
}

/// The 1Password error shape: `{"code": <int>, "message": "...", "details": []}`.
fn op_error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "code": status, "message": message, "details": [] });
    (code, Json(body)).into_response()
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records every request before routing, so even rejected ones show up in `requests()`.
async fn record(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let received_at = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|_| Bytes::new());
    state
        .lock()
        .expect("fake 1Password state poisoned")
        .requests
        .push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            authorization: header_string(&parts.headers, header::AUTHORIZATION),
            user_agent: header_string(&parts.headers, header::USER_AGENT),
            body: String::from_utf8_lossy(&bytes).into_owned(),
            received_at,
        });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Applied to every accounts route, in order: delay, injected failure, bearer token, account.
/// Injected failures come before the token check so `fail_next` hits exactly the next requests.
async fn guard_accounts(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let delay = state.lock().expect("fake 1Password state poisoned").delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let account = req
        .uri()
        .path()
        .strip_prefix(ACCOUNTS_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    {
        let mut s = state.lock().expect("fake 1Password state poisoned");
        if let Some(failure) = s.injected.as_mut().filter(|f| f.remaining > 0) {
            failure.remaining -= 1;
            let (status, retry_after) = (failure.status, failure.retry_after);
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("injected failure")
                .to_lowercase();
            let mut response = op_error(status, &reason);
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return response;
        }
        if !bearer.is_some_and(|t| s.valid_tokens.contains(&t)) {
            return op_error(401, "invalid or expired token");
        }
        if account != FakeOnePassword::ACCOUNT_ID {
            return op_error(404, "account not found");
        }
    }
    next.run(req).await
}

/// `POST /v1beta1/users/oauth2/token`: client_credentials with HTTP Basic client auth.
async fn issue_token(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let invalid_client = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response()
    };

    let expected = format!(
        "Basic {}",
        base64(
            format!(
                "{}:{}",
                FakeOnePassword::CLIENT_ID,
                FakeOnePassword::CLIENT_SECRET
            )
            .as_bytes()
        )
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if !authorized || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return invalid_client();
    }

    let token = format!("op-test-{:032x}", rand::random::<u128>());
    state
        .lock()
        .expect("fake 1Password state poisoned")
        .valid_tokens
        .insert(token.clone());
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
    }))
    .into_response()
}

/// `GET .../users?filter=&max_page_size=&page_token=`; the page token is an offset.
async fn list_users(
    State(state): State<Shared>,
    Path(account): Path<String>,
    req: Request,
) -> Response {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or_default()).unwrap_or_default();

    let page_size = match params.get("max_page_size").map(|v| v.parse::<usize>()) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => return op_error(400, "max_page_size must be between 1 and 1000"),
    };
    let offset = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match token.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return op_error(400, "invalid page_token"),
        },
    };
    let Some(wanted_states) = parse_filter(params.get("filter").map(String::as_str)) else {
        return op_error(400, "invalid filter");
    };

    let s = state.lock().expect("fake 1Password state poisoned");
    let matching: Vec<&User> = s
        .users
        .iter()
        .filter(|u| wanted_states.is_empty() || wanted_states.contains(&u.state.as_str()))
        .collect();
    let results: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|u| u.to_json(&account))
        .collect();
    let mut body = json!({ "results": results });
    let next = offset + page_size;
    if next < matching.len() {
        body["next_page_token"] = json!(next.to_string());
    }
    Json(body).into_response()
}

/// Understands `user.isActive()`, `user.isSuspended()` and their `|` combination.
/// `Some(empty)` means no filtering; `None` means the filter is not understood.
fn parse_filter(filter: Option<&str>) -> Option<Vec<&'static str>> {
    let mut states = Vec::new();
    for term in filter.unwrap_or_default().split('|').map(str::trim) {
        match term {
            "" => {}
            "user.isActive()" => states.push("ACTIVE"),
            "user.isSuspended()" => states.push("SUSPENDED"),
            _ => return None,
        }
    }
    Some(states)
}

/// `GET .../users/{user}`.
async fn get_user(
    State(state): State<Shared>,
    Path((account, user)): Path<(String, String)>,
) -> Response {
    let s = state.lock().expect("fake 1Password state poisoned");
    match s.users.iter().find(|u| u.id == user) {
        Some(u) => Json(u.to_json(&account)).into_response(),
        None => op_error(404, "user not found"),
    }
}

/// `POST .../users/{user}:suspend` and `:reactivate`; idempotent like the real API.
async fn mutate_user(
    State(state): State<Shared>,
    Path((account, segment)): Path<(String, String)>,
) -> Response {
    let Some((user_id, verb)) = segment.rsplit_once(':') else {
        return op_error(404, "not found");
    };
    let new_state = match verb {
        "suspend" => "SUSPENDED",
        "reactivate" => "ACTIVE",
        _ => return op_error(404, "not found"),
    };

    let mut s = state.lock().expect("fake 1Password state poisoned");
    let Some(index) = s.users.iter().position(|u| u.id == user_id) else {
        return op_error(404, "user not found");
    };
    if let Some((status, message)) = s.user_failures.get(user_id) {
        return op_error(*status, message);
    }
    let user = &mut s.users[index];
    user.state = new_state.to_owned();
    Json(user.to_json(&account)).into_response()
}

/// Standard base64 with padding, enough to build the expected Basic credentials
/// (no base64 crate among the dependencies).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
