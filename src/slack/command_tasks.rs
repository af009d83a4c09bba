//! Slash commands acknowledged at once and finished in the background (Slack wants an answer
//! within three seconds). Each is tracked until it ends, so graceful shutdown waits for them,
//! and whoever a command still running at the end of the drain belongs to is told through its
//! `response_url` instead of hearing nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

/// A command still being worked on.
struct InFlight {
    response_url: Option<String>,
    /// What the requester asked, as they would recognise it ("/suspend alice@example.com").
    what: String,
}

#[derive(Default)]
pub struct CommandTasks {
    in_flight: Arc<Mutex<HashMap<u64, InFlight>>>,
    next: AtomicU64,
    /// Rung whenever a command ends.
    ended: Arc<Notify>,
}

impl CommandTasks {
    /// Runs `work` in the background, tracked until it ends. `response_url` must already be
    /// one countersign trusts (Slack's).
    pub fn spawn<F>(&self, response_url: Option<String>, what: String, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, InFlight { response_url, what });
        let (in_flight, ended) = (self.in_flight.clone(), self.ended.clone());
        tokio::spawn(async move {
            work.await;
            in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&id);
            ended.notify_waiters();
        });
    }

    /// How many commands are still being worked on.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    /// Waits up to `within` for every command to finish; tells the requesters of those that
    /// did not what to do, and returns how many that was.
    pub async fn drain(&self, within: Duration, http: &reqwest::Client) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.running() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                break;
            }
        }
        let unfinished: Vec<(Option<String>, String)> = self
            .lock()
            .values()
            .map(|f| (f.response_url.clone(), f.what.clone()))
            .collect();
        tracing::warn!(
            unfinished = unfinished.len(),
            "shutting down with slash commands unfinished; telling their requesters"
        );
        let mut told = tokio::task::JoinSet::new();
        for (url, what) in &unfinished {
            let Some(url) = url.clone() else { continue };
            let text = format!(
                "countersign is restarting and could not finish your `{what}` in time, so it may not have been recorded. Check with `/approvals` and run it again if it is missing."
            );
            let http = http.clone();
            told.spawn(async move { answer(&http, &url, text).await });
        }
        told.join_all().await;
        unfinished.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, InFlight>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Posts an ephemeral answer to a slash command's `response_url`, within a few seconds. The
/// URL is a credential for the requester's conversation: it is never logged.
pub async fn answer(http: &reqwest::Client, url: &str, text: String) {
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    let sent = http
        .post(url)
        .timeout(Duration::from_secs(5))
        .json(&body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    if let Err(error) = sent {
        tracing::warn!(error = %error.without_url(), "could not answer a slash command through response_url");
    }
}
