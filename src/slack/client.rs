//! The Slack Web API calls countersign makes, through slack-morphism. Every call honours a
//! 429's Retry-After a bounded number of times.

use std::future::Future;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use std::sync::Arc;

use crate::domain::{Email, SlackUserId, Standing};
use crate::metrics::Metrics;

type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;

/// Attempts per call when Slack answers 429.
const RATE_LIMIT_TRIES: u32 = 4;
/// Longest Retry-After we sleep through inside one call; longer ones go back to the caller.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Slack {method}: {message}")]
pub struct SlackError {
    pub method: &'static str,
    pub message: String,
    pub retry_after: Option<Duration>,
}

/// A person as Slack's directory shows them (`users.info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackPerson {
    pub name: String,
    pub email: Option<Email>,
    /// The workspace the account belongs to.
    pub team_id: Option<String>,
    pub guest: bool,
    pub bot: bool,
    pub deactivated: bool,
}

impl SlackPerson {
    /// What kind of account this is, seen from `home_team` (countersign's workspace). Unknown
    /// flags count as their safe reading only when Slack sent them; an account whose team
    /// Slack did not say is not a colleague.
    pub fn standing(&self, home_team: &str) -> Standing {
        if self.deactivated {
            Standing::Deactivated
        } else if self.bot {
            Standing::Bot
        } else if self.guest {
            Standing::Guest
        } else if self.team_id.as_deref() != Some(home_team) {
            Standing::OtherWorkspace
        } else {
            Standing::Colleague
        }
    }
}

/// The bot as `auth.test` names it.
struct Me {
    bot_id: String,
    team_id: String,
}

pub struct SlackWeb {
    client: SlackClient<Connector>,
    token: SlackApiToken,
    metrics: Arc<Metrics>,
    /// Who the bot is, from `auth.test`, read once.
    me: tokio::sync::OnceCell<Me>,
    /// chat.postMessage pacing per channel.
    pacer: Pacer,
}

/// Slack's posting limit ("chat.postMessage generally allows posting one message per second
/// per channel", rate-limits page; short bursts allowed): a token bucket per channel holding
/// a burst of `burst` and refilled one message per `every`. Callers reserve their slot under
/// the lock and wait outside it, so a burst queues in order instead of drawing 429s.
struct Pacer {
    every: Duration,
    burst: f64,
    channels: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl Pacer {
    fn new(every: Duration, burst: u32) -> Self {
        Self {
            every,
            burst: f64::from(burst.max(1)),
            channels: std::sync::Mutex::default(),
        }
    }

    /// How long the next post to `channel` must wait.
    fn reserve(&self, channel: &str) -> Duration {
        if self.every.is_zero() {
            return Duration::ZERO;
        }
        let now = std::time::Instant::now();
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, at) = channels
            .entry(channel.to_owned())
            .or_insert((self.burst, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() / self.every.as_secs_f64();
        *tokens = (*tokens + refilled).min(self.burst) - 1.0;
        *at = now;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            self.every.mul_f64(-*tokens)
        }
    }
}

/// The message metadata event type a card carries, with the proposal id in its payload: how a
/// card whose post answer was lost is found again (only among the bot's own messages).
pub const CARD_EVENT: &str = "countersign_card";

impl SlackWeb {
    /// `api_url` is Slack's Web API base without a trailing slash (`https://slack.com/api`).
    /// `post_every` paces chat.postMessage per channel (Slack's one a second), after a burst of
    /// `post_burst`.
    pub fn new(
        api_url: &str,
        bot_token: &str,
        metrics: Arc<Metrics>,
        (post_every, post_burst): (Duration, u32),
    ) -> Self {
        // Plain http is allowed so the sandbox and tests can point at a local stand-in.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .unwrap_or_else(|_| {
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            })
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Self {
            client: SlackClient::new(connector),
            token: SlackApiToken::new(SlackApiTokenValue(bot_token.to_owned())),
            metrics,
            me: tokio::sync::OnceCell::new(),
            pacer: Pacer::new(post_every, post_burst),
        }
    }

    /// One Web API call, timed and counted, honouring rate limits.
    async fn call<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, SlackError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let started = std::time::Instant::now();
        let result = self.call_within_rate_limits(method, call).await;
        let error = result.as_ref().err().map(|e| e.message.clone());
        self.metrics.call("slack", method, started.elapsed(), error);
        result
    }

    async fn call_within_rate_limits<T, F, Fut>(
        &self,
        method: &'static str,
        call: F,
    ) -> Result<T, SlackError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match call().await {
                Ok(value) => return Ok(value),
                Err(SlackClientError::RateLimitError(limit)) => {
                    let wait = limit.retry_after.unwrap_or(Duration::from_secs(1));
                    if tries >= RATE_LIMIT_TRIES || wait > MAX_INLINE_WAIT {
                        return Err(SlackError {
                            method,
                            message: "rate limited".into(),
                            retry_after: Some(wait),
                        });
                    }
                    tracing::warn!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        "Slack rate limit; waiting as asked"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(SlackClientError::ApiError(api)) => {
                    return Err(SlackError {
                        method,
                        message: api.code,
                        retry_after: None,
                    })
                }
                Err(other) => {
                    return Err(SlackError {
                        method,
                        message: other.to_string(),
                        retry_after: None,
                    })
                }
            }
        }
    }

    /// Posts a message and returns its `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        blocks: Vec<SlackBlock>,
        thread_ts: Option<&str>,
    ) -> Result<String, SlackError> {
        self.post(channel, text, blocks, thread_ts, None).await
    }

    /// Posts a proposal's card, carrying the proposal id in message metadata.
    pub async fn post_card(
        &self,
        channel: &str,
        text: &str,
        blocks: Vec<SlackBlock>,
        proposal_id: &str,
    ) -> Result<String, SlackError> {
        let payload = [("proposal_id".to_owned(), proposal_id.to_owned())].into();
        let metadata = SlackMessageMetadata::new(CARD_EVENT.to_owned()).with_event_payload(payload);
        self.post(channel, text, blocks, None, Some(metadata)).await
    }

    async fn post(
        &self,
        channel: &str,
        text: &str,
        blocks: Vec<SlackBlock>,
        thread_ts: Option<&str>,
        metadata: Option<SlackMessageMetadata>,
    ) -> Result<String, SlackError> {
        let mut content = SlackMessageContent::new().with_text(text.to_owned());
        if !blocks.is_empty() {
            content = content.with_blocks(blocks);
        }
        if let Some(metadata) = metadata {
            content = content.with_metadata(metadata);
        }
        let wait = self.pacer.reserve(channel);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut request =
            SlackApiChatPostMessageRequest::new(SlackChannelId(channel.to_owned()), content);
        if let Some(ts) = thread_ts {
            request = request.with_thread_ts(SlackTs(ts.to_owned()));
        }
        let session = self.client.open_session(&self.token);
        let response = self
            .call("chat.postMessage", || session.chat_post_message(&request))
            .await?;
        Ok(response.ts.0)
    }

    /// The bot's `bot_id` and workspace, asked of `auth.test` once. Both are required: a token
    /// that is not a bot's, or that names no workspace, is refused.
    async fn me(&self) -> Result<&Me, SlackError> {
        self.me
            .get_or_try_init(|| async {
                let session = self.client.open_session(&self.token);
                let me = self.call("auth.test", || session.auth_test()).await?;
                let refused = |message: &str| SlackError {
                    method: "auth.test",
                    message: message.into(),
                    retry_after: None,
                };
                Ok(Me {
                    bot_id: me
                        .bot_id
                        .map(|b| b.0)
                        .ok_or_else(|| refused("the token is not a bot token"))?,
                    team_id: me.team_id.0,
                })
            })
            .await
    }

    async fn own_bot_id(&self) -> Result<&str, SlackError> {
        self.me().await.map(|me| me.bot_id.as_str())
    }

    /// The workspace the bot belongs to: countersign's own, whose full members are colleagues.
    pub async fn own_team_id(&self) -> Result<&str, SlackError> {
        self.me().await.map(|me| me.team_id.as_str())
    }

    /// The `ts` of the card for `proposal_id` in `channel` since `oldest`: a message the bot
    /// itself posted whose metadata names the proposal. Text anyone could type is never matched.
    pub async fn find_card(
        &self,
        channel: &str,
        oldest: chrono::DateTime<chrono::Utc>,
        proposal_id: &str,
    ) -> Result<Option<String>, SlackError> {
        let bot_id = self.own_bot_id().await?.to_owned();
        let oldest = format!(
            "{}.{:06}",
            oldest.timestamp(),
            oldest.timestamp_subsec_micros()
        );
        let request = SlackApiConversationsHistoryRequest::new()
            .with_channel(SlackChannelId(channel.to_owned()))
            .with_oldest(SlackTs(oldest))
            .with_include_all_metadata(true)
            .with_limit(200);
        let session = self.client.open_session(&self.token);
        let response = self
            .call("conversations.history", || {
                session.conversations_history(&request)
            })
            .await?;
        let is_card = |m: &SlackHistoryMessage| {
            let ours = m.sender.bot_id.as_ref().is_some_and(|b| b.0 == bot_id);
            let names_it = m.content.metadata.as_ref().is_some_and(|meta| {
                meta.event_type == CARD_EVENT
                    && meta
                        .event_payload
                        .as_ref()
                        .and_then(|p| p.get("proposal_id"))
                        .is_some_and(|id| id == proposal_id)
            });
            ours && names_it
        };
        Ok(response
            .messages
            .into_iter()
            .find(is_card)
            .map(|m| m.origin.ts.0))
    }

    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Vec<SlackBlock>,
    ) -> Result<(), SlackError> {
        let content = SlackMessageContent::new()
            .with_text(text.to_owned())
            .with_blocks(blocks);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.to_owned()),
            content,
            SlackTs(ts.to_owned()),
        );
        let session = self.client.open_session(&self.token);
        self.call("chat.update", || session.chat_update(&request))
            .await?;
        Ok(())
    }

    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &SlackUserId,
        text: &str,
    ) -> Result<(), SlackError> {
        let request = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId(channel.to_owned()),
            slack_morphism::SlackUserId(user.to_string()),
            SlackMessageContent::new().with_text(text.to_owned()),
        );
        let session = self.client.open_session(&self.token);
        self.call("chat.postEphemeral", || {
            session.chat_post_ephemeral(&request)
        })
        .await?;
        Ok(())
    }

    pub async fn open_view(&self, trigger_id: &str, view: SlackView) -> Result<(), SlackError> {
        let request = SlackApiViewsOpenRequest::new(SlackTriggerId(trigger_id.to_owned()), view);
        let session = self.client.open_session(&self.token);
        self.call("views.open", || session.views_open(&request))
            .await?;
        Ok(())
    }

    /// Publishes `user`'s Home tab (`views.publish`).
    pub async fn publish_home(
        &self,
        user: &SlackUserId,
        blocks: Vec<SlackBlock>,
    ) -> Result<(), SlackError> {
        let view = SlackView::Home(SlackHomeView::new(blocks));
        let request =
            SlackApiViewsPublishRequest::new(slack_morphism::SlackUserId(user.to_string()), view);
        let session = self.client.open_session(&self.token);
        self.call("views.publish", || session.views_publish(&request))
            .await?;
        Ok(())
    }

    pub async fn person(&self, user: &SlackUserId) -> Result<SlackPerson, SlackError> {
        let request = SlackApiUsersInfoRequest::new(slack_morphism::SlackUserId(user.to_string()));
        let session = self.client.open_session(&self.token);
        let response = self
            .call("users.info", || session.users_info(&request))
            .await?;
        let user = response.user;
        let flags = &user.flags;
        let flag = |f: Option<bool>| f.unwrap_or(false);
        let guest = flag(flags.is_restricted) || flag(flags.is_ultra_restricted);
        let bot = flag(flags.is_bot) || flag(flags.is_app_user);
        let deactivated = flag(user.deleted);
        let team_id = user.team_id.as_ref().map(|t| t.0.clone());
        let (profile_real, profile_display, profile_email) = match user.profile {
            Some(p) => (p.real_name, p.display_name, p.email),
            None => (None, None, None),
        };
        let name = [profile_real, profile_display, user.real_name, user.name]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty())
            .unwrap_or_else(|| user.id.0.clone());
        // An email Slack shows but we cannot parse counts as none: fail closed.
        let email = profile_email.and_then(|e| Email::parse(&e.0).ok());
        Ok(SlackPerson {
            name,
            email,
            team_id,
            guest,
            bot,
            deactivated,
        })
    }

    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<SlackUserId>, SlackError> {
        let request = SlackApiUserGroupsUsersListRequest::new(SlackUserGroupId(group.to_owned()));
        let session = self.client.open_session(&self.token);
        let response = self
            .call("usergroups.users.list", || {
                session.usergroups_users_list(&request)
            })
            .await?;
        Ok(response
            .users
            .into_iter()
            .filter_map(|u| SlackUserId::parse(&u.0).ok())
            .collect())
    }
}
