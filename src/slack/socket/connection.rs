//! One Socket Mode connection: opened with `apps.connections.open` and the app-level token,
//! read until Slack closes it. Each envelope is answered in its own task and acknowledged on
//! the same connection, so a slow one never delays the next.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_util::sync::CancellationToken;

use super::dispatch;
use super::envelope::{Ack, Disconnect, Envelope, Kind, Message};
use crate::app::state::AppState;

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Slack refused the app token or Socket Mode itself (`invalid_auth`, `link_disabled`…):
    /// retrying soon cannot help; an operator must act.
    Fatal(String),
    /// Slack or the network failed this time.
    Transient(String),
}

/// What a running connection tells the one keeping its slot.
#[derive(Debug)]
pub enum Event {
    /// Slack said `hello`: the connection takes envelopes (and how many Slack counts for the
    /// app, all replicas together).
    Ready(Option<u32>),
    /// Slack will close it soon (`warning`, `refresh_requested`) or did (`link_disabled`).
    Disconnect(Disconnect),
    /// The connection is gone (closed by either side, or the network).
    Closed,
}

/// A running connection: its events, and the token that closes it (dropping it closes it too).
pub struct Connection {
    pub events: mpsc::Receiver<Event>,
    pub close: CancellationToken,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close.cancel();
    }
}

#[derive(Deserialize)]
struct Opened {
    ok: bool,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Errors `apps.connections.open` answers that no retry fixes.
const FATAL: [&str; 8] = [
    "invalid_auth",
    "not_authed",
    "not_allowed_token_type",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "missing_scope",
    "forbidden_team",
];

/// Asks Slack for a WebSocket URL (single use) with the app-level token.
async fn open_url(state: &AppState, app_token: &str) -> Result<String, OpenError> {
    let url = format!(
        "{}/apps.connections.open",
        state.slack_settings.api_url.trim_end_matches('/')
    );
    let response = state
        .http
        .post(url)
        .bearer_auth(app_token)
        .send()
        .await
        .map_err(|e| OpenError::Transient(format!("apps.connections.open: {e}")))?;
    let status = response.status();
    let opened: Opened = response.json().await.map_err(|_| {
        OpenError::Transient(format!("apps.connections.open answered HTTP {status}"))
    })?;
    match (opened.ok, opened.url, opened.error) {
        (true, Some(url), _) => Ok(url),
        (_, _, Some(error)) if FATAL.contains(&error.as_str()) => Err(OpenError::Fatal(error)),
        (_, _, error) => Err(OpenError::Transient(format!(
            "apps.connections.open: {}",
            error.unwrap_or_else(|| format!("HTTP {status}"))
        ))),
    }
}

/// Opens a connection and starts reading it.
pub async fn open(state: &AppState, app_token: &str) -> Result<Connection, OpenError> {
    let url = open_url(state, app_token).await?;
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| OpenError::Transient(format!("the WebSocket did not open: {e}")))?;
    let (events_tx, events) = mpsc::channel(16);
    let close = CancellationToken::new();
    tokio::spawn(read(state.clone(), socket, events_tx, close.clone()));
    Ok(Connection { events, close })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read(
    state: AppState,
    socket: Socket,
    events: mpsc::Sender<Event>,
    close: CancellationToken,
) {
    let (mut sink, mut stream) = socket.split();
    let (frames, mut outgoing) = mpsc::channel::<Frame>(64);
    let (writer_done_tx, writer_done) = oneshot::channel::<()>();
    // One writer: acknowledgements from every envelope's task, pongs, and the final close.
    let writer = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if sink.send(frame).await.is_err() {
                break;
            }
        }
        let _ = sink.send(Frame::Close(None)).await;
        let _ = writer_done_tx.send(());
    });
    loop {
        let frame = tokio::select! {
            () = close.cancelled() => break,
            frame = stream.next() => frame,
        };
        let text = match frame {
            Some(Ok(Frame::Text(text))) => text,
            Some(Ok(Frame::Ping(data))) => {
                let _ = frames.send(Frame::Pong(data)).await;
                continue;
            }
            Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(_)) => continue,
        };
        match serde_json::from_str::<Message>(&text) {
            Ok(Message::Hello { num_connections }) => {
                let _ = events.send(Event::Ready(num_connections)).await;
            }
            Ok(Message::Disconnect { reason }) => {
                let _ = events
                    .send(Event::Disconnect(Disconnect::of(reason.as_deref())))
                    .await;
            }
            Ok(Message::EventsApi(envelope)) => handle(&state, Kind::EventsApi, envelope, &frames),
            Ok(Message::Interactive(envelope)) => {
                handle(&state, Kind::Interactive, envelope, &frames)
            }
            Ok(Message::SlashCommands(envelope)) => {
                handle(&state, Kind::SlashCommands, envelope, &frames)
            }
            Ok(Message::Unknown) => {}
            Err(error) => tracing::warn!(%error, "a Socket Mode message countersign cannot read"),
        }
    }
    // Acknowledgements still being worked on keep the writer open until they are sent.
    drop(frames);
    let _ = writer_done.await;
    writer.abort();
    let _ = events.send(Event::Closed).await;
}

/// Answers one envelope in its own task and acknowledges it on this connection.
fn handle(state: &AppState, kind: Kind, envelope: Envelope, frames: &mpsc::Sender<Frame>) {
    let (state, frames) = (state.clone(), frames.clone());
    let received = Instant::now();
    state.metrics.increment(
        "countersign_slack_envelopes_total",
        &[("type", kind.as_str())],
    );
    if envelope.retry_attempt.unwrap_or(0) > 0 {
        tracing::info!(envelope_id = %envelope.envelope_id, kind = kind.as_str(), "Slack delivered an envelope again");
    }
    tokio::spawn(async move {
        let id = envelope.envelope_id.clone();
        // Recorded first, then acknowledged: an envelope the ledger could not record is left
        // unacknowledged, and Slack delivers it again.
        let payload = match dispatch::answer(&state, kind, envelope).await {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, envelope_id = %id, "envelope not acknowledged");
                return;
            }
        };
        let ack = Ack {
            envelope_id: &id,
            payload,
        };
        let text = serde_json::to_string(&ack).expect("an ack serializes");
        if frames.send(Frame::text(text)).await.is_ok() {
            state.metrics.observe(
                "countersign_slack_ack_seconds",
                &[("type", kind.as_str())],
                received.elapsed().as_secs_f64(),
            );
        }
    });
}
