//! Slack's Socket Mode, as "Using Socket Mode" and `apps.connections.open` describe it: the
//! app-level token (never the bot token) opens a single-use WebSocket URL; Slack says `hello`,
//! sends envelopes to *any* open connection, expects each acknowledged with its `envelope_id`
//! (and delivers an unacknowledged one again), and sends `disconnect` (`warning`,
//! `refresh_requested`, `link_disabled`) before it closes a connection.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{FakeSlack, FakeState, Shared};

/// What the stand-in keeps of Socket Mode.
#[derive(Default)]
pub(super) struct SocketState {
    /// Tickets handed out by `apps.connections.open`, each good for one connection.
    tickets: HashSet<String>,
    connections: BTreeMap<u64, mpsc::UnboundedSender<Frame>>,
    next_connection: u64,
    /// Connections opened and closed, in order.
    history: Vec<Lifecycle>,
    /// Socket Mode turned off in the app's settings: connections hear `link_disabled`.
    disabled: bool,
    /// Acknowledgements received, by envelope id (`Value::Null`: no payload).
    acks: HashMap<String, Value>,
    /// Acknowledgements to drop as if lost on the way.
    acks_to_lose: usize,
    /// How long after a `warning` or `refresh_requested` Slack closes the connection.
    refresh_grace: Option<Duration>,
    round_robin: usize,
    /// How long an envelope waits for its acknowledgement (3 s unless a test shortens it).
    ack_within: Option<Duration>,
}

/// A connection's life, as the stand-in saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Opened(u64),
    Closed(u64),
}

/// An envelope's fate: its acknowledgement's payload, and on which attempt it came.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub envelope_id: String,
    /// `None`: never acknowledged; `Some(Value::Null)`: acknowledged without a payload.
    pub ack: Option<Value>,
    pub attempts: u32,
}

/// How long Slack waits for an acknowledgement before delivering again (Bolt's docs: 3 s).
const ACK_WITHIN: Duration = Duration::from_secs(3);
/// Deliveries of one envelope before Slack gives up.
const ATTEMPTS: u32 = 4;

/// `apps.connections.open`: a single-use `wss` URL (here `ws` on loopback).
pub(super) fn open_url(s: &mut FakeState) -> Value {
    let ticket = format!("{:032x}", rand::random::<u128>());
    s.socket.tickets.insert(ticket.clone());
    let ws = s.base_url.replacen("http://", "ws://", 1);
    json!({ "url": format!("{ws}/socket/link?ticket={ticket}&app_id=A0COUNTERSIGN") })
}

/// The WebSocket endpoint a ticket opens.
pub(super) async fn link(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    if !state
        .lock()
        .expect("fake Slack")
        .socket
        .tickets
        .remove(&ticket)
    {
        return (StatusCode::UNAUTHORIZED, "unknown or used ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: Shared, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let (id, first) = {
        let mut s = state.lock().expect("fake Slack");
        let id = s.socket.next_connection;
        s.socket.next_connection += 1;
        s.socket.connections.insert(id, tx);
        s.socket.history.push(Lifecycle::Opened(id));
        // An envelope waiting for a connection goes out now.
        s.socket_acked.notify_waiters();
        let first = if s.socket.disabled {
            disconnect("link_disabled")
        } else {
            json!({
                "type": "hello",
                "num_connections": s.socket.connections.len(),
                "debug_info": {"host": "applink-standin", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0COUNTERSIGN"},
            })
        };
        (id, first)
    };
    let _ = socket.send(Frame::text(first.to_string())).await;
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(Frame::Close(frame)) => {
                    let _ = socket.send(Frame::Close(frame)).await;
                    break;
                }
                Some(frame) => {
                    if socket.send(frame).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Frame::Text(text))) => acknowledged(&state, text.as_str()),
                Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut s = state.lock().expect("fake Slack");
    s.socket.connections.remove(&id);
    s.socket.history.push(Lifecycle::Closed(id));
    s.socket_acked.notify_waiters();
}

fn acknowledged(state: &Shared, text: &str) {
    let Ok(ack) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(id) = ack["envelope_id"].as_str() else {
        return;
    };
    let mut s = state.lock().expect("fake Slack");
    if s.socket.acks_to_lose > 0 {
        s.socket.acks_to_lose -= 1;
        return;
    }
    s.socket.acks.insert(
        id.to_owned(),
        ack.get("payload").cloned().unwrap_or(Value::Null),
    );
    s.socket_acked.notify_waiters();
}

fn disconnect(reason: &str) -> Value {
    json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "wss-standin"}})
}

impl FakeSlack {
    /// The app-level token `apps.connections.open` takes.
    pub const APP_TOKEN: &'static str = "xapp-1-test-app-token";

    /// Delivers an envelope of `kind` (`interactive`, `slash_commands`, `events_api`) to one
    /// open connection, and again (to the next) each time it is not acknowledged within 3 s,
    /// up to four deliveries, as Slack does.
    pub async fn deliver(&self, kind: &str, payload: Value) -> Delivery {
        let envelope_id = format!("{:08x}-standin", rand::random::<u64>());
        let (notify, ack_within) = {
            let s = self.lock();
            (
                s.socket_acked.clone(),
                s.socket.ack_within.unwrap_or(ACK_WITHIN),
            )
        };
        for attempt in 0..ATTEMPTS {
            let deadline = tokio::time::Instant::now() + ack_within;
            let envelope = json!({
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": attempt,
                "retry_reason": if attempt == 0 { "" } else { "timeout" },
            });
            let mut sent = false;
            loop {
                let woken = notify.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                {
                    let mut s = self.lock();
                    if let Some(ack) = s.socket.acks.get(&envelope_id) {
                        return Delivery {
                            envelope_id,
                            ack: Some(ack.clone()),
                            attempts: attempt + 1,
                        };
                    }
                    if !sent {
                        sent = s.send_to_one(Frame::text(envelope.to_string()));
                    }
                }
                if tokio::time::timeout_at(deadline, &mut woken).await.is_err() {
                    break;
                }
            }
        }
        Delivery {
            envelope_id,
            ack: None,
            attempts: ATTEMPTS,
        }
    }

    /// Sends `disconnect` with `reason` on every open connection. After `warning` or
    /// `refresh_requested` Slack closes each after the grace (see
    /// [`FakeSlack::close_refreshed_after`]); `link_disabled` closes them now and keeps Socket
    /// Mode off until [`FakeSlack::enable_socket_mode`].
    pub fn disconnect_all(&self, reason: &str) {
        let mut s = self.lock();
        let message = Frame::text(disconnect(reason).to_string());
        let ids: Vec<u64> = s.socket.connections.keys().copied().collect();
        for sender in s.socket.connections.values() {
            let _ = sender.send(message.clone());
        }
        if reason == "link_disabled" {
            s.socket.disabled = true;
            for sender in s.socket.connections.values() {
                let _ = sender.send(Frame::Close(None));
            }
            return;
        }
        if let Some(grace) = s.socket.refresh_grace {
            let senders: Vec<_> = ids
                .iter()
                .filter_map(|id| s.socket.connections.get(id).cloned())
                .collect();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for sender in senders {
                    let _ = sender.send(Frame::Close(None));
                }
            });
        }
    }

    /// How long an envelope waits for its acknowledgement before it is delivered again (Slack:
    /// 3 s), so a test of redelivery need not wait Slack's time.
    pub fn deliver_again_after(&self, wait: Duration) {
        self.lock().socket.ack_within = Some(wait);
    }

    /// How long after `warning`/`refresh_requested` the stand-in closes a connection itself.
    pub fn close_refreshed_after(&self, grace: Duration) {
        self.lock().socket.refresh_grace = Some(grace);
    }

    /// Closes every connection at once, without a `disconnect` (a network failure).
    pub fn drop_connections(&self) {
        for sender in self.lock().socket.connections.values() {
            let _ = sender.send(Frame::Close(None));
        }
    }

    /// Revokes the app-level token: `apps.connections.open` answers `invalid_auth` from now on.
    pub fn revoke_app_token(&self) {
        self.lock().app_token_revoked = true;
    }

    pub fn enable_socket_mode(&self) {
        self.lock().socket.disabled = false;
    }

    /// The next `n` acknowledgements are lost on the way, so their envelopes come again.
    pub fn lose_next_acks(&self, n: usize) {
        self.lock().socket.acks_to_lose = n;
    }

    pub fn open_connections(&self) -> usize {
        self.lock().socket.connections.len()
    }

    /// Every connection opened and closed, in order.
    pub fn connection_history(&self) -> Vec<Lifecycle> {
        self.lock().socket.history.clone()
    }
}

impl FakeState {
    /// Sends to the next open connection in turn; whether there was one.
    fn send_to_one(&mut self, frame: Frame) -> bool {
        let ids: Vec<u64> = self.socket.connections.keys().copied().collect();
        if ids.is_empty() {
            return false;
        }
        self.socket.round_robin = (self.socket.round_robin + 1) % ids.len();
        let id = ids[self.socket.round_robin];
        self.socket.connections[&id].send(frame).is_ok()
    }
}
