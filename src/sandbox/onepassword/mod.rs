//! A real HTTP stand-in for the 1Password Users API for Partners, written from 1Password's
//! published reference (developer.1password.com/docs/users-api: "List users", "Get a user",
//! "Suspend a user", "Reactivate a suspended user", "Request an access token", "Revoke an
//! access token") and its OpenAPI document, never from our client (DESIGN §5).
//!
//! It refuses what the service refuses: any `filter` but the two documented ones, page sizes
//! above 1000, page tokens it never issued, requests without a token or a `User-Agent`, and
//! suspending an externally managed administrator or the last owner. It keeps users in memory,
//! records every request, and can inject failures, token expiry and latency.
//!
//! The same server stands in for the Events API's audit events too (events.rs), with its own
//! bearer tokens and request log: every suspension or reactivation is in its audit log.

mod events;
mod routes;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};

pub use events::ConsoleActor;
pub use wire::{base64, grpc_code};

const TOKEN_LIFETIME_SECS: u64 = 900;

pub struct FakeOnePassword {
    /// "http://127.0.0.1:PORT", no trailing slash.
    pub base_url: String,
    /// The version segment every path starts with ("v1beta1" unless started otherwise).
    pub version: String,
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

/// A user's role in the account; only owners and administrators have suspension rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Member,
    Admin,
    Owner,
}

/// A user as seeded into the stand-in. Every field of the published `User` is optional, so
/// `email` and `display_name` may be missing, and `state` may be "STATE_UNSPECIFIED".
#[derive(Clone, Debug, Default)]
pub struct SeedUser {
    pub id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub state: String,
    pub role: Role,
    /// Managed by an identity provider ("externally managed administrators (EAM users)" cannot
    /// be suspended, "Suspend a user" → Restrictions).
    pub externally_managed: bool,
}

impl SeedUser {
    /// A member with every field present; `state` is "ACTIVE" or "SUSPENDED".
    pub fn member(id: &str, email: &str, display_name: &str, state: &str) -> Self {
        Self {
            id: id.to_owned(),
            email: Some(email.to_owned()),
            display_name: Some(display_name.to_owned()),
            state: state.to_owned(),
            ..Self::default()
        }
    }

    fn to_json(&self, account: &str) -> Value {
        let mut user = json!({
            "id": self.id,
            "state": self.state,
            "create_time": "2024-01-01T00:00:00Z",
            "path": format!("accounts/{account}/users/{}", self.id),
        });
        if let Some(email) = &self.email {
            user["email"] = json!(email);
        }
        if let Some(name) = &self.display_name {
            user["display_name"] = json!(name);
        }
        user
    }
}

/// How the last page of a listing says it is the last: the reference says to expect both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LastPage {
    #[default]
    EmptyToken,
    NoToken,
}

#[derive(Default)]
struct FakeState {
    /// Insertion order is the listing order.
    users: Vec<SeedUser>,
    valid_tokens: HashSet<String>,
    revoked: Vec<String>,
    /// Page tokens issued, with the offset each continues from.
    page_tokens: HashMap<String, usize>,
    /// The most a page holds, whatever `max_page_size` asks: servers may return fewer.
    page_cap: Option<usize>,
    last_page: LastPage,
    requests: Vec<RecordedRequest>,
    injected: Option<InjectedFailure>,
    user_failures: HashMap<String, (u16, String)>,
    /// Per user and verb ("suspend" / "reactivate"): the answer every such call gets.
    action_failures: HashMap<(String, String), InjectedAnswer>,
    /// Per user: once a mutation of them succeeds, this many GETs of them fail.
    read_failures_after_mutation: HashMap<String, ReadFault>,
    /// The next mutation is held this long before 1Password acts on it.
    hold_next_mutation: Option<Duration>,
    /// The next successful mutation's answer is lost: this status is sent instead.
    lose_next_mutation_answer: Option<u16>,
    /// Mutations take effect at once, and their answers are sent this much later.
    mutation_answer_delay: Duration,
    delay: Duration,
    /// Requests being answered now, overall and per user, and the most there ever were.
    in_flight: usize,
    most_in_flight: usize,
    in_flight_by_user: HashMap<String, usize>,
    most_in_flight_for_one_user: usize,
    /// The Events API: its audit log, cursors, rate limits and requests.
    events: events::EventsState,
}

/// GETs of a user that fail once a mutation of them went through.
#[derive(Clone, Copy, Debug)]
struct ReadFault {
    armed: bool,
    remaining: usize,
    answer: InjectedAnswer,
}

/// An error the stand-in answers instead of doing the work.
#[derive(Clone, Copy, Debug)]
struct InjectedAnswer {
    status: u16,
    retry_after: Option<u64>,
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

    /// The API as published today, under `/v1beta1`.
    pub async fn start() -> Self {
        Self::start_at_version("v1beta1").await
    }

    /// The same API under another version segment, as when the preview moves.
    pub async fn start_at_version(version: &str) -> Self {
        let state = Shared::default();
        let app = routes::router(version, state.clone());
        let (base_url, server) = super::serve_on_loopback(app, "fake 1Password").await;
        Self {
            base_url,
            version: version.to_owned(),
            state,
            server,
        }
    }

    /// Adds a member (or replaces the user with the same id). `state` is "ACTIVE" or "SUSPENDED".
    pub fn add_user(&self, id: &str, email: &str, display_name: &str, state: &str) {
        self.add(SeedUser::member(id, email, display_name, state));
    }

    /// Adds a user (or replaces the one with the same id).
    pub fn add(&self, user: SeedUser) {
        let mut s = self.lock();
        match s.users.iter_mut().find(|u| u.id == user.id) {
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

    /// Changes a user's state as an owner would in the 1Password console, with no audit event
    /// (see [`FakeOnePassword::console_set_state`] for one that is reported).
    pub fn set_state(&self, id: &str, state: &str) {
        if let Some(user) = self.lock().users.iter_mut().find(|u| u.id == id) {
            user.state = state.to_owned();
        }
    }

    /// Every Users API request received, in order (token requests included; Events API
    /// requests are in [`FakeOnePassword::events_request_log`]).
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
        let path = routes::token_path(&self.version);
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Access tokens revoked through the revoke endpoint, in order.
    pub fn revoked_tokens(&self) -> Vec<String> {
        self.lock().revoked.clone()
    }

    /// Access tokens issued and not revoked.
    pub fn live_tokens(&self) -> Vec<String> {
        self.lock().valid_tokens.iter().cloned().collect()
    }

    /// Every token issued so far now gets 401 (simulates expiry mid-run).
    pub fn revoke_tokens(&self) {
        self.lock().valid_tokens.clear();
    }

    /// Pages hold at most `n` users whatever `max_page_size` asks, as a server may answer.
    pub fn cap_pages_at(&self, n: usize) {
        self.lock().page_cap = Some(n.max(1));
    }

    /// How the last page marks the end of a listing.
    pub fn end_listings_with(&self, last_page: LastPage) {
        self.lock().last_page = last_page;
    }

    /// The next `n` requests to `/{version}/accounts/...` answer `status` with the 1Password
    /// error body (and `Retry-After` if given) without touching state. They are still recorded.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u64>) {
        self.lock().injected = Some(InjectedFailure {
            remaining: n,
            status,
            retry_after,
        });
    }

    /// Every suspend/reactivate of this user answers this error.
    pub fn fail_user(&self, id: &str, status: u16, message: &str) {
        self.lock()
            .user_failures
            .insert(id.to_owned(), (status, message.to_owned()));
    }

    /// Every `:{verb}` of this user answers `status` (with `Retry-After` if given) and changes
    /// nothing, until [`FakeOnePassword::clear_action_failure`].
    pub fn fail_action(&self, id: &str, verb: &str, status: u16, retry_after: Option<u64>) {
        self.lock().action_failures.insert(
            (id.to_owned(), verb.to_owned()),
            InjectedAnswer {
                status,
                retry_after,
            },
        );
    }

    pub fn clear_action_failure(&self, id: &str, verb: &str) {
        self.lock()
            .action_failures
            .remove(&(id.to_owned(), verb.to_owned()));
    }

    /// Once the next suspend or reactivate of this user succeeds, the following `count` GETs of
    /// them answer `status`: a read-back lost after the change was made.
    pub fn fail_reads_after_mutation(
        &self,
        id: &str,
        count: usize,
        status: u16,
        retry_after: Option<u64>,
    ) {
        let fault = ReadFault {
            armed: false,
            remaining: count,
            answer: InjectedAnswer {
                status,
                retry_after,
            },
        };
        self.lock()
            .read_failures_after_mutation
            .insert(id.to_owned(), fault);
    }

    /// The next suspend or reactivate that goes through answers `status` instead of the user,
    /// as when the answer is lost on its way back.
    pub fn lose_next_mutation_answer(&self, status: u16) {
        self.lock().lose_next_mutation_answer = Some(status);
    }

    /// Suspends and reactivates take effect at once but are answered `delay` later: a
    /// window in which 1Password has acted and countersign does not know it yet.
    pub fn answer_mutations_after(&self, delay: Duration) {
        self.lock().mutation_answer_delay = delay;
    }

    /// The next suspend or reactivate waits this long before 1Password acts on it and answers,
    /// as a stalled call does.
    pub fn hold_next_mutation(&self, hold: Duration) {
        self.lock().hold_next_mutation = Some(hold);
    }

    /// Lifts a `fail_user` fault, as when an admin fixes what 1Password refused.
    pub fn clear_user_failure(&self, id: &str) {
        self.lock().user_failures.remove(id);
    }

    /// The most `/{version}/accounts/...` requests that were being answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.lock().most_in_flight
    }

    /// The most requests about any one user that were being answered at once.
    pub fn most_in_flight_for_one_user(&self) -> usize {
        self.lock().most_in_flight_for_one_user
    }

    /// Every `/{version}/accounts/...` answer waits this long first.
    pub fn set_delay(&self, d: Duration) {
        self.lock().delay = d;
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, FakeState> {
    // A test that panicked while holding the lock has failed already; keep answering.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for FakeOnePassword {
    fn drop(&mut self) {
        self.server.abort();
    }
}
