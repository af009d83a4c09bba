//! The OpenAPI 3.1 document, generated from the handlers' own annotations and types: every
//! route is registered through [`OpenApiRouter`], so a route cannot exist without being in
//! the document.

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "countersign",
        description = "Automation proposes suspensions and restores of 1Password users; responders decide in Slack; \
                       countersign executes and records every step in a verifiable ledger. \
                       Per 1Password user, actions execute in the order they were approved: an older \
                       approved, failed or retrying proposal ends `superseded` (no call, `superseded_by` \
                       names the newer one) once a newer one for the same user is approved. A suspend \
                       proposed while a restore of the same user is pending ends that restore \
                       (`denied` by the system); a restore proposed while a suspend is pending is 409.",
    ),
    modifiers(&BearerToken),
    tags(
        (name = "proposals", description = "Propose, read and cancel (automation tokens)"),
        (name = "ledger", description = "The event log, for auditors (audit:read)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "slack", description = "Slack's request URLs; signed by Slack, not for other callers"),
        (name = "users-api-gateway", description = "The 1Password Users API, answered by countersign for a SOAR's 1Password integration: reads pass through, suspend and reactivate become proposals decided in Slack. Errors are the Users API's `{code, message, details}`, not problem JSON"),
    )
)]
pub struct ApiDoc;

/// API tokens are bearer tokens made by `countersign token create`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document, as JSON.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI 3.1 document")))]
pub async fn document(Extension(document): Extension<Arc<Document>>) -> Json<Document> {
    Json(document.as_ref().clone())
}
