#![allow(dead_code)]
//! A SOAR's webhook endpoint on 127.0.0.1: records each delivery, and can answer 503 to the
//! first few to act as a receiver that is down.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

#[derive(Clone, Debug)]
pub struct Delivery {
    pub signature: String,
    pub body: String,
}

#[derive(Default)]
struct Inner {
    failures_left: usize,
    attempts: usize,
    deliveries: Vec<Delivery>,
}

#[derive(Clone)]
pub struct CallbackReceiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl CallbackReceiver {
    /// A receiver that answers 503 to its first `failures` requests.
    pub async fn start(failures: usize) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            failures_left: failures,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().deliveries.clone()
    }

    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    inner.attempts += 1;
    if inner.failures_left > 0 {
        inner.failures_left -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let signature = headers
        .get("x-countersign-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    inner.deliveries.push(Delivery {
        signature: signature.to_owned(),
        body,
    });
    StatusCode::NO_CONTENT
}
