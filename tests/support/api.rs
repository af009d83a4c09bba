//! Acts of automation on the API: tokens made the way `countersign token create` makes them,
//! proposals, and authenticated reads. One helper an act, shared by every test file.

use countersign::ledger::Scope;
use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// A token for "tines" with these scopes, made the way `countersign token create` makes it.
    pub async fn token(&self, scopes: &[Scope]) -> String {
        self.token_named("tines", scopes).await
    }

    pub async fn token_named(&self, name: &str, scopes: &[Scope]) -> String {
        self.ledger
            .create_token(name, scopes, chrono::Utc::now())
            .await
            .unwrap()
            .1
    }

    pub async fn propose_with(&self, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/proposals", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Proposes with a fresh all-propose token and returns the new proposal once its card
    /// is posted, so a test starts from a settled ledger.
    pub async fn propose(&self, body: &Value) -> Value {
        let token = self
            .token(&[Scope::ProposeSuspend, Scope::ProposeRestore])
            .await;
        let response = self.propose_with(&token, body).await;
        assert_eq!(response.status(), 201, "proposal not created");
        let proposal: Value = response.json().await.unwrap();
        self.card_ts(proposal["id"].as_str().unwrap()).await;
        proposal
    }

    /// Proposes like [`TestApp::propose`] and returns only the new proposal's id.
    pub async fn propose_id(&self, body: &Value) -> String {
        self.propose(body).await["id"].as_str().unwrap().to_owned()
    }

    /// Proposes with a fresh all-propose token and returns the id as soon as the proposal is
    /// accepted (created, or a report folded into a pending one), without waiting for its card:
    /// a burst outruns Slack's posting rate.
    pub async fn propose_unsettled(&self, body: &Value) -> String {
        let token = self
            .token(&[Scope::ProposeSuspend, Scope::ProposeRestore])
            .await;
        let response = self.propose_with(&token, body).await;
        assert!(response.status().is_success(), "proposal not accepted");
        let proposal: Value = response.json().await.unwrap();
        proposal["id"].as_str().unwrap().to_owned()
    }

    /// A GET of the API with `token`, answered 200 with JSON.
    pub async fn get_json(&self, path_and_query: &str, token: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path_and_query}");
        response.json().await.unwrap()
    }
}
