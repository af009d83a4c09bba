#![allow(dead_code)]
//! Acts of an approver with a passkey: enrolled from an operator's link, and voting from the
//! link an Approve click offers, through the real pages' endpoints.

use countersign::app::enrollment;
use countersign::app::relying_party::Passkeys;
use countersign::domain::SlackUserId;
use serde_json::Value;

use super::app::{policy_with_ttls, spawn_app_with, test_timing, TestApp, PUBLIC_URL};
use super::authenticator::SoftPasskey;

/// The suite's approvers with restores on passkeys (the product's default).
pub async fn spawn_app_with_passkeys() -> TestApp {
    let policy =
        policy_with_ttls("30m", "24h").replace("step_up = \"none\"", "step_up = \"passkey\"");
    spawn_app_with(&policy, test_timing()).await
}

/// The path of a link countersign printed or offered (`PUBLIC_URL/passkey/...`).
pub fn path_of(link: &str) -> String {
    let at = link.find("/passkey/").expect("a passkey link");
    link[at..]
        .split(|c: char| c.is_whitespace() || matches!(c, ')' | '|' | '>'))
        .next()
        .unwrap()
        .to_owned()
}

/// The origin of a link (what the passkey pages are served under).
pub fn origin_of(link: &str) -> String {
    url::Url::parse(link)
        .unwrap()
        .origin()
        .ascii_serialization()
}

/// A page's ceremony against the server at `base`: asks for options, lets a passkey answer
/// with `answer`, sends the answer.
pub async fn ceremony(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    answer: impl FnOnce(&Value) -> Value,
) -> reqwest::Response {
    let post = |url: String, body: Value| http.post(url).json(&body).send();
    let options = post(format!("{base}{path}/options"), Value::Null)
        .await
        .unwrap();
    assert_eq!(options.status(), 200, "options for {path}");
    let options: Value = options.json().await.unwrap();
    let response = answer(&options);
    post(format!("{base}{path}/finish"), response)
        .await
        .unwrap()
}

impl TestApp {
    /// An operator's `passkey invite` for `user`: the enrollment link's path.
    pub async fn invite_passkey(&self, user: &str) -> String {
        let passkeys = Passkeys::new(&PUBLIC_URL.parse().unwrap()).unwrap();
        let user = SlackUserId::parse(user).unwrap();
        let link = enrollment::invite(&self.ledger, &passkeys, &user, chrono::Utc::now())
            .await
            .unwrap();
        path_of(&link)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Runs a page's ceremony: asks for options, lets a passkey answer, sends the answer.
    pub async fn ceremony(
        &self,
        path: &str,
        answer: impl FnOnce(&Value) -> Value,
    ) -> reqwest::Response {
        ceremony(&self.http, &self.address, path, answer).await
    }

    /// Enrolls a new software passkey for `user` from an operator's invitation.
    pub async fn enroll(&self, user: &str) -> SoftPasskey {
        let mut passkey = SoftPasskey::new(PUBLIC_URL);
        let path = self.invite_passkey(user).await;
        let enrolled = self.ceremony(&path, |o| passkey.register(o)).await;
        assert_eq!(enrolled.status(), 200, "{}", enrolled.text().await.unwrap());
        passkey
    }

    /// `user` clicks Approve on `proposal`; the vote link offered to them, as a path.
    pub async fn vote_link(&self, user: &str, proposal: &str) -> String {
        self.click(user, "approve", proposal).await;
        path_of(&self.ephemeral_to(user).await)
    }

    /// Casts a vote from a vote link with `passkey`.
    pub async fn vote_with(&self, path: &str, passkey: &mut SoftPasskey) -> reqwest::Response {
        self.ceremony(path, |o| passkey.assert(o)).await
    }
}
