//! The automation HTTP API (DESIGN §3).

mod auth;
mod body;
mod ledger;
mod ops;
mod problem;
mod proposals;

use axum::routing::{get, post};
use axum::Router;

pub use problem::{FieldError, Problem};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/proposals",
            post(proposals::create).get(proposals::list),
        )
        .route("/v1/proposals/{id}", get(proposals::get))
        .route("/v1/proposals/{id}/cancel", post(proposals::cancel))
        .route("/v1/ledger", get(ledger::events))
        .route("/healthz", get(ops::health))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { Problem::not_found("no such route") })
}
