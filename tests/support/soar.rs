//! A SOAR platform's 1Password integration, as such integrations are built: it takes an API
//! base URL, a client id and secret and an account UUID; gets a token with HTTP Basic; walks
//! the user list by `page_token`; and retries a 503 after its `Retry-After`. Pointed at
//! 1Password's stand-in or at countersign's gateway, it cannot tell which it talks to.

use std::time::Duration;

use countersign::ledger::GatewayPermission;
use reqwest::header::RETRY_AFTER;
use serde_json::Value;
use tokio::sync::Mutex;

use super::app::TestApp;
use super::fake_onepassword::FakeOnePassword;

/// How many times a write is sent before the integration gives up (its playbook's retry).
const ATTEMPTS: usize = 20;

pub struct Soar {
    http: reqwest::Client,
    pub base_url: String,
    pub version: String,
    pub account: String,
    pub client_id: String,
    client_secret: String,
    token: Mutex<Option<String>>,
}

/// An answer: HTTP status, `Retry-After` in seconds, JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

impl Soar {
    pub fn new(base_url: &str, version: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .user_agent("SOARPlatform-1Password/2.4.1")
                .build()
                .unwrap(),
            base_url: base_url.to_owned(),
            version: version.to_owned(),
            account: FakeOnePassword::ACCOUNT_ID.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            token: Mutex::new(None),
        }
    }

    /// An integration pointed at `app`'s gateway with a client made the way `countersign
    /// gateway client create` makes it.
    pub async fn at_gateway(app: &TestApp, name: &str, permissions: &[GatewayPermission]) -> Self {
        let (client, secret) = app.gateway_client(name, permissions).await;
        Self::new(&app.address, &app.op.version, &client, &secret)
    }

    /// An integration pointed at 1Password itself (its stand-in).
    pub fn at_onepassword(op: &FakeOnePassword) -> Self {
        Self::new(
            &op.base_url,
            &op.version,
            FakeOnePassword::CLIENT_ID,
            FakeOnePassword::CLIENT_SECRET,
        )
    }

    fn users_url(&self) -> String {
        format!(
            "{}/{}/accounts/{}/users",
            self.base_url, self.version, self.account
        )
    }

    /// The token endpoint's answer to these credentials.
    pub async fn request_token(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(format!(
                "{}/{}/users/oauth2/token",
                self.base_url, self.version
            ))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// A bearer token, fetched once.
    pub async fn token(&self) -> String {
        let mut token = self.token.lock().await;
        if let Some(token) = token.as_ref() {
            return token.clone();
        }
        let answer = self
            .request_token(&[("grant_type", "client_credentials")])
            .await;
        assert_eq!(answer.status, 200, "token refused: {:?}", answer.body);
        let value = answer.body["access_token"].as_str().unwrap().to_owned();
        *token = Some(value.clone());
        value
    }

    pub async fn revoke(&self, token: &str) -> Answer {
        let response = self
            .http
            .post(format!(
                "{}/{}/users/oauth2/revoke",
                self.base_url, self.version
            ))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// One page of "List users".
    pub async fn list(&self, query: &[(&str, &str)]) -> Answer {
        let token = self.token().await;
        let response = self
            .http
            .get(self.users_url())
            .query(query)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// Every user, page by page, following `next_page_token` until it is empty or absent.
    pub async fn list_all(&self, page_size: usize) -> Vec<Value> {
        let size = page_size.to_string();
        let mut users = Vec::new();
        let mut page_token = String::new();
        loop {
            let mut query = vec![("max_page_size", size.as_str())];
            if !page_token.is_empty() {
                query.push(("page_token", page_token.as_str()));
            }
            let page = self.list(&query).await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            users.extend(page.body["results"].as_array().unwrap().iter().cloned());
            let next = page.body["next_page_token"].as_str().unwrap_or_default();
            if next.is_empty() {
                return users;
            }
            page_token = next.to_owned();
        }
    }

    pub async fn get(&self, user: &str) -> Answer {
        let token = self.token().await;
        let response = self
            .http
            .get(format!("{}/{user}", self.users_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// `POST …/users/{user}:{verb}` once.
    pub async fn post_once(&self, user: &str, verb: &str) -> Answer {
        let token = self.token().await;
        let response = self
            .http
            .post(format!("{}/{user}:{verb}", self.users_url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// Suspends as the integration does: sent again after each 503's `Retry-After`.
    pub async fn suspend(&self, user: &str) -> Answer {
        self.post_until_answered(user, "suspend").await
    }

    pub async fn reactivate(&self, user: &str) -> Answer {
        self.post_until_answered(user, "reactivate").await
    }

    async fn post_until_answered(&self, user: &str, verb: &str) -> Answer {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let answer = self.post_once(user, verb).await;
            if answer.status != 503 {
                return answer;
            }
            let wait = answer.retry_after.unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            last = Some(answer);
        }
        last.expect("at least one attempt")
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

impl TestApp {
    /// A gateway client made the way `countersign gateway client create` makes it: its id and
    /// secret.
    pub async fn gateway_client(
        &self,
        name: &str,
        permissions: &[GatewayPermission],
    ) -> (String, String) {
        let (client, secret) = self
            .ledger
            .create_gateway_client(name, permissions, chrono::Utc::now())
            .await
            .unwrap();
        (client.id, secret)
    }
}
