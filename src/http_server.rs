//! The HTTP server's accept loop, with protection against slow clients. A client must send a
//! request's headers within `header_read_timeout`, which also applies while an idle keep-alive
//! connection waits for its next request. The body must arrive within `body_read_timeout` of the
//! headers, or the answer is a 408 problem and the connection closes. At most `max_connections`
//! connections are held at once.
//!
//! When every connection slot is taken, the server stops accepting: new connections wait in the
//! kernel's listen backlog and are served as slots free up. They are not closed. A burst of
//! legitimate callers (many SOAR playbooks during an incident, Slack's retries) is served late
//! rather than refused, and no connection holds a slot for long: a silent or trickling client
//! loses its slot within the header or body timeout. The limit protects the process's memory and
//! file descriptors. It cannot keep an attacker with more connections than the limit from
//! delaying others.
//!
//! Only HTTP/1.1 is served. Cleartext HTTP/2 has no header read timeout in hyper, and nothing
//! that calls countersign uses it: Slack, automation and Prometheus speak HTTP/1.1, and TLS ends
//! at the proxy in front.
//!
//! Graceful shutdown is the same as `axum::serve`'s. Once `shutdown` resolves, the server stops
//! accepting, each connection finishes the request it is serving and then closes, and `serve`
//! returns when every connection has closed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::api::Problem;
use crate::config::Timing;

/// What the server allows a client: how long for headers and for a body, and how many
/// connections at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
}

impl From<&Timing> for Limits {
    fn from(timing: &Timing) -> Self {
        Self {
            header_read_timeout: timing.header_read_timeout,
            body_read_timeout: timing.body_read_timeout,
            max_connections: timing.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves. Then it stops
/// accepting, lets each connection finish its request in flight, and returns once all have
/// closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connections watch `signal`: it closes when shutdown begins. The loop waits on `closed`:
    // every connection holds a receiver until it ends.
    let (signal, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let (closed, close_rx) = watch::channel(());
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut saturated = false;

    loop {
        if slots.available_permits() == 0 && !saturated {
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection limit reached; new connections wait to be accepted"
            );
        }
        saturated = slots.available_permits() == 0;
        let (stream, slot) = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            _ = signal.closed() => break,
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn({
                let app = app.clone();
                move |request| handle(app.clone(), request, limits.body_read_timeout)
            }),
        );
        let signal = signal.clone();
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            let mut connection = pin!(connection);
            let mut shutting_down = pin!(signal.closed());
            let mut draining = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(error) = served {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        break;
                    }
                    _ = &mut shutting_down, if !draining => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(close_rx);
            drop(slot);
        });
    }

    drop(close_rx);
    drop(listener);
    closed.closed().await;
    Ok(())
}

/// The next connection, once a slot is free for it.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> (TcpStream, OwnedSemaphorePermit) {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, slot),
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                // Out of file descriptors, say: hyper and axum wait a second before trying
                // again, rather than spinning.
                tracing::error!(%error, "accept error");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// An error that ended one connection attempt, not the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One request. The body must arrive by its deadline, or the answer is a 408 problem whatever
/// the handler made of the broken body.
async fn handle(
    app: Router,
    request: Request<Incoming>,
    body_read_timeout: Duration,
) -> Result<Response, Infallible> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Instant::now() + body_read_timeout,
            sleep: None,
            timed_out: timed_out.clone(),
        })
    });
    let response = app.oneshot(request).await?;
    if !timed_out.load(Ordering::Acquire) {
        return Ok(response);
    }
    tracing::warn!(%method, %path, ?body_read_timeout, "request body too slow; answered 408");
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "Request timeout",
        format!(
            "the request body did not arrive within {} s of its headers",
            body_read_timeout.as_secs_f64()
        ),
    )
    .into_response();
    // The rest of the body is unread: the connection cannot carry another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}

/// The request body did not arrive by its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTooSlow;

/// A request body that fails once its deadline passes with data still missing. A body that has
/// already arrived is read in full, however late the handler reads it.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Started the first time the body has to wait for the client.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.store(true, Ordering::Release);
                Poll::Ready(Some(Err(BodyTooSlow.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
