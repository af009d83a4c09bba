//! The page's wave button: a credential-stuffing wave as a SOAR would report it, 50 suspensions
//! proposed through the API as fast as it takes them, so they arrive as incident cards.

use serde_json::{json, Value};

use super::onepassword::FakeOnePassword;

/// How many users one wave reports.
pub(super) const WAVE: usize = 50;

/// Adds the wave's users to 1Password when the sandbox starts, as the accounts a real wave hits
/// already exist. Added later, a lookup could miss them: countersign reads emails from a
/// listing it keeps for a minute (`find_by_email`).
pub(super) fn seed_users(op: &FakeOnePassword) {
    for n in 1..=WAVE {
        let (id, email, name) = wave_user(n);
        op.add_user(&id, &email, &name, "ACTIVE");
    }
}

/// The 1Password users of the wave: `wave01@example.com`…
fn wave_user(n: usize) -> (String, String, String) {
    (
        format!("WAVEUSER{n:018}"),
        format!("wave{n:02}@example.com"),
        format!("Wave user {n}"),
    )
}

/// The API countersign serves the wave to, as the sandbox's SOAR.
pub(super) struct Soar<'a> {
    pub http: &'a reqwest::Client,
    /// countersign's base URL.
    pub bot: &'a str,
    pub token: &'a str,
}

pub(super) async fn wave(soar: Soar<'_>) -> Value {
    let alert = format!("stuffing-{}", uuid::Uuid::new_v4().simple());
    let mut sends = tokio::task::JoinSet::new();
    for n in 1..=WAVE {
        let (_, email, _) = wave_user(n);
        let body = json!({
            "action": "suspend", "user": {"email": email},
            "reason": "Successful sign-in from a credential-stuffing botnet",
            "source": {"platform": "sandbox SOAR", "rule": "credential-stuffing", "confidence": "high", "alert_id": alert},
        });
        let request = soar
            .http
            .post(format!("{}/v1/proposals", soar.bot))
            .bearer_auth(soar.token)
            .json(&body);
        sends.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    let mut accepted = 0;
    let mut refused = vec![];
    while let Some(sent) = sends.join_next().await {
        match sent {
            Ok(Ok(status)) if (200..300).contains(&status) => accepted += 1,
            Ok(Ok(status)) => refused.push(status.to_string()),
            Ok(Err(error)) => refused.push(error.to_string()),
            Err(error) => refused.push(error.to_string()),
        }
    }
    json!({"status": 200, "body": {"accepted": accepted, "refused": refused, "alert_id": alert}})
}
