//! The stand-in's endpoints, each holding the rule its reference page states.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::events::{self, Actor};
use super::wire::{base64, invalid_argument, op_error, page_token};
use super::{
    lock, FakeOnePassword, InjectedAnswer, LastPage, RecordedRequest, Role, Shared,
    TOKEN_LIFETIME_SECS,
};

/// "List users": `max_page_size` defaults to 25 and may be at most 1000.
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 1000;

pub(super) fn token_path(version: &str) -> String {
    format!("/{version}/users/oauth2/token")
}

pub(super) fn router(version: &str, state: Shared) -> Router {
    let accounts = Router::new()
        .route(
            &format!("/{version}/accounts/{{account}}/users"),
            get(list_users),
        )
        // `{user}` captures the whole last segment, so "ID:suspend" arrives here too.
        .route(
            &format!("/{version}/accounts/{{account}}/users/{{user}}"),
            get(get_user).post(mutate_user),
        )
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), format!("/{version}/accounts/")),
            guard_accounts,
        ));
    let users_api = Router::new()
        .route(&token_path(version), post(issue_token))
        .route(
            &format!("/{version}/users/oauth2/revoke"),
            post(revoke_token),
        )
        .merge(accounts)
        .layer(middleware::from_fn(require_user_agent))
        .layer(middleware::from_fn_with_state(
            (state.clone(), Log::UsersApi),
            record,
        ));
    // Another service on the same server: its own bearer tokens, no `User-Agent` rule (its
    // pages ask for none), and its own request log.
    let events_api = events::router().layer(middleware::from_fn_with_state(
        (state.clone(), Log::EventsApi),
        record,
    ));
    users_api.merge(events_api).with_state(state)
}

/// Which API's request log a request goes to.
#[derive(Clone, Copy)]
enum Log {
    UsersApi,
    EventsApi,
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records every request before routing, so even refused ones show up in `requests()` (or,
/// for the Events API, `events_request_log()`).
async fn record(State((state, log)): State<(Shared, Log)>, req: Request, next: Next) -> Response {
    let received_at = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_else(|_| Bytes::new());
    let request = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: header_string(&parts.headers, header::AUTHORIZATION),
        user_agent: header_string(&parts.headers, header::USER_AGENT),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        received_at,
    };
    match log {
        Log::UsersApi => lock(&state).requests.push(request),
        Log::EventsApi => lock(&state).events.record_request(request),
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Every reference page lists `User-Agent: <CompanyOrProductName>/<version>` among the
/// headers to include.
async fn require_user_agent(req: Request, next: Next) -> Response {
    let agent = header_string(req.headers(), header::USER_AGENT).unwrap_or_default();
    let product_slash_version = agent
        .split_once('/')
        .is_some_and(|(product, version)| !product.trim().is_empty() && !version.trim().is_empty());
    if !product_slash_version {
        return invalid_argument("User-Agent must name the integration as <Product>/<version>");
    }
    next.run(req).await
}

/// Applied to every accounts route, in order: delay, injected failure, bearer token, account.
/// Injected failures come before the token check so `fail_next` hits exactly the next requests.
async fn guard_accounts(
    State((state, prefix)): State<(Shared, String)>,
    req: Request,
    next: Next,
) -> Response {
    let user = req
        .uri()
        .path()
        .split_once("/users/")
        .map(|(_, rest)| rest.split(':').next().unwrap_or_default().to_owned());
    {
        let mut s = lock(&state);
        s.in_flight += 1;
        s.most_in_flight = s.most_in_flight.max(s.in_flight);
        if let Some(user) = &user {
            let n = s.in_flight_by_user.entry(user.clone()).or_default();
            *n += 1;
            let n = *n;
            s.most_in_flight_for_one_user = s.most_in_flight_for_one_user.max(n);
        }
    }
    let response = answer_accounts(&state, &prefix, req, next).await;
    let mut s = lock(&state);
    s.in_flight -= 1;
    if let Some(user) = &user {
        if let Some(n) = s.in_flight_by_user.get_mut(user) {
            *n -= 1;
        }
    }
    response
}

async fn answer_accounts(state: &Shared, prefix: &str, req: Request, next: Next) -> Response {
    let delay = lock(state).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let bearer = header_string(req.headers(), header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let account = req
        .uri()
        .path()
        .strip_prefix(prefix)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    {
        let mut s = lock(state);
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

fn client_authenticated(headers: &HeaderMap) -> bool {
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
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
}

/// OAuth 2.0 errors (RFC 6749 §5.2), which the token endpoints answer instead of gRPC bodies.
fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// "Request an access token": `grant_type=client_credentials`, optional `scope=openid`, HTTP
/// Basic client authentication; an opaque bearer token for 900 s.
async fn issue_token(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if !client_authenticated(&headers) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    if form.get("scope").is_some_and(|scope| scope != "openid") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let token = format!("op-test-{:032x}", rand::random::<u128>());
    lock(&state).valid_tokens.insert(token.clone());
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
    }))
    .into_response()
}

/// "Revoke an access token": form `token=`, HTTP Basic; 200 even for a token it never issued
/// (RFC 7009 §2.2), 401 for bad client credentials.
async fn revoke_token(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if !client_authenticated(&headers) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut s = lock(&state);
    s.valid_tokens.remove(token);
    s.revoked.push(token.clone());
    StatusCode::OK.into_response()
}

/// "List users": `filter` is exactly `user.isActive()` or `user.isSuspended()`, or omitted
/// (or empty) for both; anything else is InvalidArgument. `max_page_size` 1..=1000, default 25
/// (0 means the default); page tokens are opaque, and the last page carries an empty one.
async fn list_users(
    State(state): State<Shared>,
    Path(account): Path<String>,
    req: Request,
) -> Response {
    let Ok(params) = serde_urlencoded::from_str::<HashMap<String, String>>(
        req.uri().query().unwrap_or_default(),
    ) else {
        return invalid_argument("the query string cannot be parsed");
    };
    let wanted = match params.get("filter").map(String::as_str) {
        None | Some("") => None,
        Some("user.isActive()") => Some("ACTIVE"),
        Some("user.isSuspended()") => Some("SUSPENDED"),
        Some(other) => return invalid_argument(&format!("invalid filter: {other}")),
    };
    let asked = match params.get("max_page_size").map(|v| v.parse::<usize>()) {
        None | Some(Ok(0)) => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if n <= MAX_PAGE_SIZE => n,
        Some(_) => return invalid_argument("max_page_size must be between 1 and 1000"),
    };
    let mut s = lock(&state);
    let page_size = s.page_cap.map_or(asked, |cap| asked.min(cap));
    let offset = match params.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match s.page_tokens.get(token) {
            Some(offset) => *offset,
            None => return invalid_argument("invalid page_token"),
        },
    };
    let matching: Vec<_> = s
        .users
        .iter()
        .filter(|u| wanted.is_none_or(|state| u.state == state))
        .collect();
    let results: Vec<_> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|u| u.to_json(&account))
        .collect();
    let next = offset + page_size;
    let more = next < matching.len();
    let mut body = json!({ "results": results });
    if more {
        let token = page_token();
        s.page_tokens.insert(token.clone(), next);
        body["next_page_token"] = json!(token);
    } else if s.last_page == LastPage::EmptyToken {
        body["next_page_token"] = json!("");
    }
    Json(body).into_response()
}

/// The injected error as the Users API would send it.
fn injected(answer: InjectedAnswer) -> Response {
    let mut response = op_error(answer.status, "injected failure");
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// "Get a user".
async fn get_user(
    State(state): State<Shared>,
    Path((account, user)): Path<(String, String)>,
) -> Response {
    let mut s = lock(&state);
    if let Some(fault) = s.read_failures_after_mutation.get_mut(&user) {
        if fault.armed && fault.remaining > 0 {
            fault.remaining -= 1;
            return injected(fault.answer);
        }
    }
    match s.users.iter().find(|u| u.id == user) {
        Some(u) => Json(u.to_json(&account)).into_response(),
        None => op_error(404, "user not found"),
    }
}

/// "Suspend a user" / "Reactivate a suspended user": idempotent (an already suspended user
/// comes back unchanged), and "externally managed administrators" and "the last remaining
/// owner of an account" cannot be suspended.
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
    let hold = lock(&state).hold_next_mutation.take();
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    let (answer, delay) = apply_mutation(&state, &account, user_id, verb, new_state);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// The mutation itself, under the lock: its answer, and how long to wait before sending it.
fn apply_mutation(
    state: &Shared,
    account: &str,
    user_id: &str,
    verb: &str,
    new_state: &str,
) -> (Response, std::time::Duration) {
    let now = std::time::Duration::ZERO;
    let mut s = lock(state);
    let Some(index) = s.users.iter().position(|u| u.id == user_id) else {
        return (op_error(404, "user not found"), now);
    };
    if let Some((status, message)) = s.user_failures.get(user_id) {
        return (op_error(*status, message), now);
    }
    if let Some(answer) = s
        .action_failures
        .get(&(user_id.to_owned(), verb.to_owned()))
    {
        return (injected(*answer), now);
    }
    let user = &s.users[index];
    if verb == "suspend" && user.state != "SUSPENDED" {
        if user.externally_managed && user.role != Role::Member {
            let refusal = op_error(403, "externally managed administrators cannot be suspended");
            return (refusal, now);
        }
        let other_owner = s
            .users
            .iter()
            .any(|u| u.id != user.id && u.role == Role::Owner && u.state == "ACTIVE");
        if user.role == Role::Owner && !other_owner {
            return (op_error(403, "no_owner_remain"), now);
        }
    }
    // A change made is in the audit log even if its answer is lost below.
    let st = &mut *s;
    let from = std::mem::replace(&mut st.users[index].state, new_state.to_owned());
    st.events
        .record_change(&st.users[index], &from, Actor::Integration);
    let answer = match s.lose_next_mutation_answer.take() {
        Some(status) => op_error(status, "the answer was lost"),
        None => Json(s.users[index].to_json(account)).into_response(),
    };
    if let Some(fault) = s.read_failures_after_mutation.get_mut(user_id) {
        fault.armed = true;
    }
    (answer, s.mutation_answer_delay)
}
