//! The OpenAPI document integrators build against: generated from the handlers, so it lists
//! every route and every route it lists is served.

mod support;

use serde_json::Value;
use support::app::*;

const ROUTES: [(&str, &str); 29] = [
    ("post", "/v1/proposals"),
    ("get", "/v1/proposals"),
    ("get", "/v1/proposals/{id}"),
    ("post", "/v1/proposals/{id}/cancel"),
    ("get", "/v1/ledger"),
    ("get", "/v1/drift"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("post", "/slack/interactions"),
    ("post", "/slack/commands"),
    ("post", "/slack/events"),
    ("get", "/passkey/enroll/{token}"),
    ("post", "/passkey/enroll/{token}/options"),
    ("post", "/passkey/enroll/{token}/finish"),
    ("get", "/passkey/add/{token}"),
    ("post", "/passkey/add/{token}/options"),
    ("post", "/passkey/add/{token}/prove"),
    ("post", "/passkey/add/{token}/finish"),
    ("get", "/passkey/vote/{token}"),
    ("post", "/passkey/vote/{token}/options"),
    ("post", "/passkey/vote/{token}/finish"),
    ("get", "/passkey/passkey.js"),
    ("post", "/{version}/users/oauth2/token"),
    ("post", "/{version}/users/oauth2/revoke"),
    ("get", "/{version}/accounts/{account}/users"),
    ("get", "/{version}/accounts/{account}/users/{user}"),
    ("post", "/{version}/accounts/{account}/users/{user}"),
];

async fn document(app: &TestApp) -> Value {
    let response = app
        .http
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_openapi_3_1() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Proposal"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn every_route_is_in_the_document() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        ROUTES.len(),
        "the document lists a route this test does not know"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let id = countersign::domain::ProposalId::new().to_string();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            let url = format!("{}{}", app.address, path.replace("{id}", &id));
            let request = match method.as_str() {
                "get" => app.http.get(&url),
                "post" => app.http.post(&url),
                other => panic!("unexpected method {other}"),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                !body.contains("no such route"),
                "{method} {path} is not served"
            );
        }
    }
}

#[tokio::test]
async fn a_proposal_request_schema_names_its_fields() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let body = &doc["components"]["schemas"]["ProposalBody"]["properties"];
    for field in ["action", "user", "reason", "source", "callback_url"] {
        assert!(body[field].is_object(), "{field} missing from ProposalBody");
    }
}
