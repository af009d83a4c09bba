//! Callbacks to automation (DESIGN §3): POST `{event, proposal}` to the proposal's
//! callback_url, signed `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`. Every attempt
//! is a ledger event; a receiver that is down is retried with backoff and never holds up
//! execution, which runs in another lane.

use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{backoff, JobResult};
use crate::app::state::AppState;
use crate::domain::{CallbackUrl, Proposal, Requester};
use crate::ledger::{ClaimedJob, EventKind, Job};

/// Attempts before a callback is given up (about an hour with the backoff cap).
const MAX_ATTEMPTS: u32 = 12;

/// The `X-Countersign-Signature` value for `body` at unix time `t`.
fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The callback URL of the requester a job is for: the first requester's when `to` is none,
/// else that token's; none once they withdrew.
fn recipient<'a>(proposal: &'a Proposal, to: Option<&str>) -> Option<&'a CallbackUrl> {
    proposal
        .callbacks()
        .into_iter()
        .find(|(requester, _)| match to {
            None => proposal.requester.same_as(requester),
            Some(token) => {
                matches!(requester, Requester::Integration { token_id, .. } if token_id == token)
            }
        })
        .map(|(_, url)| url)
}

pub(super) async fn deliver(
    state: &AppState,
    claimed: &ClaimedJob,
) -> Result<JobResult, sqlx::Error> {
    let Job::Callback { event, body, to } = &claimed.job else {
        unreachable!("only callbacks run in the callback lane")
    };
    let id = claimed.proposal_id;
    let Some(proposal) = state.ledger.proposal(id).await? else {
        return Ok(JobResult::Abandon("the proposal is gone".into()));
    };
    let Some(url) = recipient(&proposal, to.as_deref()) else {
        return Ok(JobResult::Abandon(
            "the requester has no callback_url (or withdrew)".into(),
        ));
    };
    // Checked again now: a host taken off CALLBACK_ALLOWED_HOSTS is never called.
    if let Err(refused) = url.check_allowed(&state.callback_hosts) {
        return Ok(JobResult::Abandon(refused));
    }
    let Some(secret) = state.callback_secret.as_deref() else {
        return Ok(JobResult::Abandon(
            "CALLBACK_SIGNING_SECRET is not set".into(),
        ));
    };
    let sent = state
        .http
        .post(url.expose())
        .header("content-type", "application/json")
        .header(
            "x-countersign-signature",
            signature(secret, Utc::now().timestamp(), body),
        )
        .body(body.clone())
        .send()
        .await;
    let (delivered, answer) = match &sent {
        Ok(response) if response.status().is_success() => {
            (true, json!({"status": response.status().as_u16()}))
        }
        Ok(response) => (false, json!({"status": response.status().as_u16()})),
        Err(error) => (
            false,
            json!({"error": if error.is_timeout() { "timed out" } else { "could not connect" }}),
        ),
    };

    let now = Utc::now();
    let mut tx = state.ledger.begin().await?;
    let payload = json!({"event": event, "url": url.reference(), "to": to, "attempt": claimed.attempts, "delivered": delivered, "answer": answer});
    tx.append(
        Some(id),
        EventKind::CallbackAttempted,
        "system",
        payload,
        now,
    )
    .await?;
    if delivered {
        tx.complete_job(claimed, now).await?;
    }
    tx.commit().await?;
    if delivered {
        tracing::info!(proposal_id = %id, %event, "callback delivered");
        return Ok(JobResult::Done);
    }
    let error = format!("callback not delivered: {answer}");
    if claimed.attempts >= MAX_ATTEMPTS {
        return Ok(JobResult::Abandon(error));
    }
    Ok(JobResult::Retry {
        after: backoff(claimed.attempts, Duration::from_secs(600)),
        error,
    })
}
