//! The automation HTTP API (DESIGN §3).

mod auth;
pub mod body;
mod drift;
mod ledger;
mod openapi;
mod ops;
pub mod problem;
mod proposals;
pub mod rate_limit;

use std::sync::Arc;

use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use problem::{FieldError, Problem};

use crate::app::state::AppState;
use crate::{gateway, slack, web};

/// Every HTTP route, with the OpenAPI document built from the same registrations.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(proposals::create, proposals::list))
        .routes(routes!(proposals::get))
        .routes(routes!(proposals::cancel))
        .routes(routes!(ledger::events))
        .routes(routes!(drift::list))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(slack::interactions::handle))
        .routes(routes!(slack::commands::handle))
        .routes(routes!(slack::events::handle))
        .routes(routes!(web::passkeys::enroll_page))
        .routes(routes!(web::passkeys::enroll_options))
        .routes(routes!(web::passkeys::enroll_finish))
        .routes(routes!(web::passkeys::add_page))
        .routes(routes!(web::passkeys::add_options))
        .routes(routes!(web::passkeys::add_prove))
        .routes(routes!(web::passkeys::add_finish))
        .routes(routes!(web::passkeys::vote_page))
        .routes(routes!(web::passkeys::vote_options))
        .routes(routes!(web::passkeys::vote_finish))
        .routes(routes!(web::passkeys::script))
        .routes(routes!(gateway::oauth::token))
        .routes(routes!(gateway::oauth::revoke))
        .routes(routes!(gateway::users::list))
        .routes(routes!(gateway::users::get, gateway::users::act))
        .split_for_parts();
    let router = router
        .layer(Extension(Arc::new(document.clone())))
        .fallback(|| async { Problem::not_found("no such route") });
    (router, document)
}
