//! Socket Mode: Slack's requests over WebSockets countersign opens itself, so nothing of
//! Slack's needs a public HTTP endpoint into the tool that holds the keys. With
//! `SLACK_APP_TOKEN` set, `SLACK_SOCKET_CONNECTIONS` slots each keep one connection open;
//! envelopes go through the same handlers as the HTTP routes (`dispatch`).
//!
//! Our own listener over tokio-tungstenite, not slack-morphism's (2.31): on a `disconnect`
//! that one closes the connection before opening the next, and it retries a failed connect at a
//! fixed 30 s. Here a slot opens the next connection first and lets the old one go only once
//! the new one said `hello`; reconnects back off up to a cap; and a refusal no retry can fix
//! (`invalid_auth`, `link_disabled`) is shown by `/readyz` and retried only slowly.

mod connection;
mod dispatch;
mod envelope;
pub mod health;

pub use health::SocketHealth;

use std::time::Duration;

use tokio::task::JoinHandle;

use connection::{Connection, Event, OpenError};
use envelope::Disconnect;

use crate::app::state::AppState;

/// The running slots; stopped when shutdown begins (`AppState::stopping`).
pub struct SocketMode {
    slots: Vec<JoinHandle<()>>,
}

impl SocketMode {
    /// Starts the slots when `SLACK_APP_TOKEN` is set.
    pub fn start(state: &AppState) -> Option<Self> {
        let token = state.slack_settings.app_token.clone()?;
        let slots = (0..state.slack_settings.socket_connections)
            .map(|slot| tokio::spawn(keep_open(state.clone(), token.clone(), slot)))
            .collect();
        Some(Self { slots })
    }

    /// Waits for every slot to close its connection (they stop when shutdown begins).
    pub async fn stop(self) {
        for slot in self.slots {
            let _ = slot.await;
        }
    }
}

/// Keeps one connection open until shutdown.
async fn keep_open(state: AppState, token: String, slot: usize) {
    let mut backoff = Backoff::new(&state);
    loop {
        let connection = tokio::select! {
            () = state.stopping.cancelled() => return,
            opened = ready_connection(&state, &token) => opened,
        };
        let current = match connection {
            Ok(connection) => connection,
            Err(OpenError::Fatal(error)) => {
                refused(&state, &error);
                if wait(&state, state.timing.socket_fatal_retry).await {
                    return;
                }
                continue;
            }
            Err(OpenError::Transient(error)) => {
                let pause = backoff.next();
                tracing::warn!(slot, %error, ?pause, "a Socket Mode connection could not open");
                if wait(&state, pause).await {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        state.socket.set_problem(None);
        state.socket.opened();
        tracing::info!(slot, "Socket Mode connection open");
        let mut current = current;
        let ended = serve(&state, &token, slot, &mut current).await;
        state.socket.closed();
        drop(current);
        match ended {
            Ended::Stopping => return,
            Ended::Closed => tracing::info!(slot, "Socket Mode connection closed; reconnecting"),
            Ended::LinkDisabled => {
                refused(&state, "link_disabled");
                if wait(&state, state.timing.socket_fatal_retry).await {
                    return;
                }
            }
        }
    }
}

enum Ended {
    Stopping,
    Closed,
    LinkDisabled,
}

/// Serves `current` until it ends, replacing it on a refresh: the next connection is opened
/// (and says `hello`) before the old one is let go, so no moment has fewer connections.
async fn serve(state: &AppState, token: &str, slot: usize, current: &mut Connection) -> Ended {
    loop {
        let event = tokio::select! {
            () = state.stopping.cancelled() => return Ended::Stopping,
            event = current.events.recv() => event.unwrap_or(Event::Closed),
        };
        match event {
            Event::Ready(_) => {}
            Event::Closed => return Ended::Closed,
            Event::Disconnect(Disconnect::LinkDisabled) => return Ended::LinkDisabled,
            Event::Disconnect(Disconnect::Refresh(reason)) => {
                tracing::info!(slot, %reason, "Slack asked for a new connection; opening it first");
                let next = tokio::select! {
                    () = state.stopping.cancelled() => return Ended::Stopping,
                    next = ready_connection(state, token) => next,
                };
                match next {
                    // The old connection closes as it is dropped, after the new one said hello.
                    Ok(next) => drop(std::mem::replace(current, next)),
                    // The old one serves until Slack closes it; then the slot reconnects.
                    Err(error) => {
                        tracing::warn!(slot, ?error, "the replacement connection did not open")
                    }
                }
            }
        }
    }
}

/// A connection that said `hello`.
async fn ready_connection(state: &AppState, token: &str) -> Result<Connection, OpenError> {
    let mut connection = connection::open(state, token).await?;
    match tokio::time::timeout(HELLO_WITHIN, connection.events.recv()).await {
        Ok(Some(Event::Ready(counted))) => {
            tracing::info!(app_connections = ?counted, "Slack said hello");
            Ok(connection)
        }
        Ok(Some(Event::Disconnect(Disconnect::LinkDisabled))) => {
            Err(OpenError::Fatal("link_disabled".into()))
        }
        _ => Err(OpenError::Transient("Slack never said hello".into())),
    }
}

/// What Slack's HTTP routes answer while Socket Mode is on: nothing of Slack's is accepted
/// over HTTP, signed or not.
pub fn http_route_off() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        "Slack's requests arrive over Socket Mode; this route is off",
    )
        .into_response()
}

/// How long a new connection may take to say `hello`.
const HELLO_WITHIN: Duration = Duration::from_secs(10);

/// Records a refusal no retry fixes, and says in the log what to do about it.
fn refused(state: &AppState, error: &str) {
    let fix = match error {
        "link_disabled" => "Socket Mode is off in the Slack app's settings (Settings → Socket Mode): turn it on, or unset SLACK_APP_TOKEN to use the HTTP request URLs",
        "missing_scope" => "the app-level token lacks connections:write: generate one with that scope (Basic Information → App-Level Tokens)",
        _ => "SLACK_APP_TOKEN was refused: generate an app-level token with connections:write (Basic Information → App-Level Tokens) and restart",
    };
    let problem = format!("Slack refused Socket Mode ({error}): {fix}");
    tracing::error!("{problem}");
    state.socket.set_problem(Some(problem));
}

/// Sleeps `pause`, or less when shutdown begins; whether it began.
async fn wait(state: &AppState, pause: Duration) -> bool {
    tokio::select! {
        () = state.stopping.cancelled() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Doubling pauses between reconnects, from a tenth of the cap up to the cap.
struct Backoff {
    cap: Duration,
    next: Duration,
}

impl Backoff {
    fn new(state: &AppState) -> Self {
        let cap = state
            .timing
            .socket_reconnect_cap
            .max(Duration::from_millis(1));
        Self {
            cap,
            next: cap / 10,
        }
    }

    fn next(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.cap);
        pause
    }

    fn reset(&mut self) {
        self.next = self.cap / 10;
    }
}
