//! A real HTTP fake of the Slack Web API methods countersign uses, answering in the shapes
//! slack-morphism 2.31 parses, plus `response_url` endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::routing::{any, post};
use axum::Router;
use serde_json::Value;

const BOT_USER: &str = "UBOT";
const BOT_ID: &str = "BBOT";
const KNOWN_METHODS: &[&str] = &[
    "apps.connections.open",
    "auth.test",
    "conversations.history",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.publish",
    "users.info",
    "usergroups.users.list",
];

pub struct FakeSlack {
    /// "http://127.0.0.1:PORT/api", no trailing slash.
    pub api_url: String,
    base_url: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Debug)]
pub struct SlackCall {
    pub method: String,
    /// Query, JSON and form parameters merged into one object.
    pub params: Value,
}

#[derive(Clone, Debug)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    /// `Value::Null` when the message has no blocks.
    pub blocks: Value,
    /// The message metadata it was posted with (`{event_type, event_payload}`), if any.
    pub metadata: Value,
    /// Who posted it: the bot, or a person (a message typed in the channel).
    pub user: String,
}

/// Who a Slack account is, as `users.info` describes it ("users.info" → the user object:
/// `deleted`, `is_bot`, `is_app_user`, `is_restricted` (a guest), `is_ultra_restricted` (a
/// single-channel guest), and `team_id`, which differs for a Slack Connect user).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SlackUserKind {
    #[default]
    Member,
    Guest,
    SingleChannelGuest,
    Bot,
    App,
    Deactivated,
    /// A Slack Connect user from the workspace with this team id.
    OtherWorkspace(String),
}

#[derive(Clone, Debug)]
struct SlackUser {
    name: String,
    email: Option<String>,
    kind: SlackUserKind,
}

#[derive(Default)]
struct FakeState {
    users: HashMap<String, SlackUser>,
    /// Methods that answer this HTTP status, without effect, until cleared.
    failing: HashMap<String, u16>,
    usergroups: HashMap<String, Vec<String>>,
    calls: Vec<SlackCall>,
    /// chat.postMessage messages in posting order, edited in place by chat.update.
    messages: Vec<PostedMessage>,
    rate_limits: HashMap<String, (usize, u64)>,
    /// Calls that take effect but whose answer is lost (HTTP 500), per method.
    lost_answers: HashMap<String, usize>,
    responses: HashMap<String, Vec<Value>>,
    /// The last ts handed out, in microseconds; also numbers views.
    next_seq: u64,
    /// Modals opened with views.open, in order.
    views: Vec<OpenedView>,
    /// The workspace this Slack is.
    team: String,
    /// How long `response_url` posts wait before they are answered.
    response_stall: std::time::Duration,
    /// Slack's posting limit, when enforced: one chat.postMessage per `every` per channel,
    /// with bursts of `burst`; the channels' buckets; and how many posts it refused.
    post_limit: Option<(std::time::Duration, f64)>,
    post_buckets: HashMap<String, (f64, std::time::Instant)>,
    posts_refused: usize,
    /// "http://127.0.0.1:PORT", for the WebSocket URLs `apps.connections.open` hands out.
    base_url: String,
    socket: socket::SocketState,
    /// The app-level token was revoked: `apps.connections.open` answers `invalid_auth`.
    app_token_revoked: bool,
    /// Each user's Home tab, as last published.
    homes: HashMap<String, Value>,
    /// Rung on every Socket Mode acknowledgement (and closed connection).
    socket_acked: Arc<tokio::sync::Notify>,
}

/// A modal the bot opened, with the trigger it answered.
#[derive(Clone, Debug)]
pub struct OpenedView {
    pub id: String,
    pub trigger_id: String,
    pub view: Value,
}

type Shared = Arc<Mutex<FakeState>>;

mod block_kit;
mod methods;
mod socket;
use methods::{api, response_url};
pub use socket::{Delivery, Lifecycle};

impl FakeSlack {
    pub const BOT_TOKEN: &'static str = "xoxb-test-bot-token";

    /// The workspace `T0TEST`.
    pub async fn start() -> Self {
        Self::start_in("T0TEST").await
    }

    /// The Web API of the workspace `team`.
    pub async fn start_in(team: &str) -> Self {
        let state = Shared::default();
        state.lock().expect("fresh state").team = team.to_owned();
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/response/{id}", post(response_url))
            .route("/socket/link", axum::routing::get(socket::link))
            .with_state(state.clone());

        let (base_url, server) = super::serve_on_loopback(app, "fake Slack").await;
        state.lock().expect("fresh state").base_url = base_url.clone();
        Self {
            api_url: format!("{base_url}/api"),
            base_url,
            state,
            server,
        }
    }

    /// A member for `users.info`; `email: None` gives a profile without email.
    pub fn add_user(&self, id: &str, name: &str, email: Option<&str>) {
        self.add_user_of_kind(id, name, email, SlackUserKind::Member);
    }

    /// A user for `users.info` who is a guest, a bot, deactivated, or from elsewhere.
    pub fn add_user_of_kind(&self, id: &str, name: &str, email: Option<&str>, kind: SlackUserKind) {
        let user = SlackUser {
            name: name.to_owned(),
            email: email.map(str::to_owned),
            kind,
        };
        self.lock().users.insert(id.to_owned(), user);
    }

    /// Every call to `method` answers HTTP `status` (with Slack's error body) and has no
    /// effect, until [`FakeSlack::clear_failure`]: an outage of that method.
    pub fn fail_method(&self, method: &str, status: u16) {
        self.lock().failing.insert(method.to_owned(), status);
    }

    pub fn clear_failure(&self, method: &str) {
        self.lock().failing.remove(method);
    }

    /// A person types `text` in `channel`, as a message the bot did not post.
    pub fn post_as_user(&self, channel: &str, user: &str, text: &str) -> String {
        let mut s = self.lock();
        let ts = s.next_ts();
        s.messages.push(PostedMessage {
            channel: channel.to_owned(),
            ts: ts.clone(),
            thread_ts: None,
            text: Some(text.to_owned()),
            blocks: Value::Null,
            metadata: Value::Null,
            user: user.to_owned(),
        });
        ts
    }

    /// A user group for `usergroups.users.list`.
    pub fn add_usergroup(&self, group_id: &str, members: &[&str]) {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.lock().usergroups.insert(group_id.to_owned(), members);
    }

    /// Every Web API call received, in order (rejected and rate-limited ones included).
    pub fn calls(&self) -> Vec<SlackCall> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<SlackCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Messages from successful chat.postMessage calls, in order, with their current
    /// content (after any chat.update).
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.lock().messages.clone()
    }

    /// Messages the bot posted outside a thread (the cards).
    pub fn top_level_messages(&self) -> Vec<PostedMessage> {
        self.filtered_messages(|m| m.thread_ts.is_none() && m.user == BOT_USER)
    }

    pub fn thread_replies(&self, ts: &str) -> Vec<PostedMessage> {
        self.filtered_messages(|m| m.thread_ts.as_deref() == Some(ts))
    }

    /// Current content of a message, after any chat.update.
    pub fn message(&self, channel: &str, ts: &str) -> Option<PostedMessage> {
        self.filtered_messages(|m| m.channel == channel && m.ts == ts)
            .pop()
    }

    pub fn updates(&self) -> Vec<SlackCall> {
        self.calls_to("chat.update")
    }

    pub fn ephemerals(&self) -> Vec<SlackCall> {
        self.calls_to("chat.postEphemeral")
    }

    /// The next `n` calls to `method` answer HTTP 429 with `Retry-After` and
    /// `{"ok":false,"error":"ratelimited"}`; they are recorded but have no effect.
    pub fn rate_limit_next(&self, method: &str, n: usize, retry_after_secs: u64) {
        self.lock()
            .rate_limits
            .insert(method.to_owned(), (n, retry_after_secs));
    }

    /// A `response_url` served by this fake; what is POSTed there is in `responses(id)`.
    /// The next `n` calls to `method` take effect but answer HTTP 500, as when a response is
    /// lost on the way back.
    pub fn lose_answer_next(&self, method: &str, n: usize) {
        self.lock().lost_answers.insert(method.to_owned(), n);
    }

    /// `user`'s Home tab as last published (`views.publish`), if ever.
    pub fn home_of(&self, user: &str) -> Option<Value> {
        self.lock().homes.get(user).cloned()
    }

    /// Modals opened so far, in order.
    pub fn views(&self) -> Vec<OpenedView> {
        self.lock().views.clone()
    }

    /// Enforces Slack's posting limit: one chat.postMessage per `every` per channel, bursts of
    /// `burst` tolerated ("Posting messages: 1 per second. Short bursts >1 allowed"); beyond
    /// it, 429 `ratelimited` with `Retry-After`.
    pub fn limit_posts(&self, every: std::time::Duration, burst: usize) {
        self.lock().post_limit = Some((every, burst as f64));
    }

    /// How many chat.postMessage calls the posting limit refused.
    pub fn posts_refused(&self) -> usize {
        self.lock().posts_refused
    }

    /// Every `response_url` post waits this long before it is answered, as a slow Slack does.
    pub fn stall_responses(&self, stall: std::time::Duration) {
        self.lock().response_stall = stall;
    }

    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base_url)
    }

    pub fn responses(&self, id: &str) -> Vec<Value> {
        self.lock().responses.get(id).cloned().unwrap_or_default()
    }

    fn filtered_messages(&self, keep: impl Fn(&PostedMessage) -> bool) -> Vec<PostedMessage> {
        self.lock()
            .messages
            .iter()
            .filter(|m| keep(m))
            .cloned()
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake Slack state poisoned")
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}
