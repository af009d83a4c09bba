//! Building the application from settings: ledger, clients, router and workers.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::rate_limit::RateLimiter;
use crate::app::state::AppState;
use crate::app::step_up::Passkeys;
use crate::config::Settings;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::onepassword::OnePassword;
use crate::slack::{Directory, SlackWeb};
use crate::worker::Workers;

/// Slack's and the API's request bodies are small; anything larger is refused unread.
const BODY_LIMIT: usize = 64 * 1024;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// More routes served beside the app's (the sandbox's page); none for `serve`.
    extra: Option<Router>,
}

impl Application {
    /// Opens and migrates the ledger, builds the clients and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let ledger = Ledger::connect(&settings.database_url).await?;
        ledger.migrate().await?;
        let metrics = Arc::new(Metrics::default());
        let slack = Arc::new(SlackWeb::new(
            &settings.slack.api_url,
            &settings.slack.bot_token,
            metrics.clone(),
            (
                settings.timing.slack_post_every,
                settings.timing.slack_post_burst,
            ),
        ));
        let onepassword = Arc::new(
            OnePassword::new(settings.onepassword, metrics.clone())
                .relisting_misses_every(settings.timing.op_miss_relist_every),
        );
        let endpoints = onepassword.endpoints();
        tracing::info!(
            token = %endpoints.token, revoke = %endpoints.revoke, users = %endpoints.users,
            "1Password Users API endpoints"
        );
        let passkeys = settings
            .public_url
            .as_ref()
            .map(|url| Passkeys::new(url).map(Arc::new))
            .transpose()
            .map_err(anyhow::Error::msg)?;
        for warning in settings.policy.warnings() {
            tracing::warn!("policy: {warning}");
        }
        let state = AppState {
            passkeys,
            ledger,
            policy: Arc::new(settings.policy),
            onepassword,
            metrics,
            directory: Arc::new(Directory::with_cache_ttl(
                slack.clone(),
                settings.timing.directory_cache,
                settings.slack.team_id.clone(),
            )),
            slack,
            slack_settings: Arc::new(settings.slack),
            callback_hosts: Arc::new(settings.callback_allowed_hosts),
            callback_secret: settings.callback_secret.map(Arc::from),
            http: reqwest::Client::builder()
                .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            wake: Arc::new(Notify::new()),
            timing: settings.timing,
            rate_limiter: Arc::new(RateLimiter::new(settings.api_rate_limit)),
            lanes: Arc::default(),
            op_concurrency: Arc::new(crate::app::Concurrency::new(settings.op_concurrency)),
            commands: Arc::default(),
            stopping: CancellationToken::new(),
            audit_events: settings
                .events
                .map(|config| Arc::new(crate::onepassword::events::AuditEvents::new(config))),
            socket: Arc::default(),
        };
        let listener = TcpListener::bind(settings.bind_addr).await?;
        Ok(Self {
            listener,
            state,
            extra: None,
        })
    }

    /// Serves `routes` beside the app's own.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra = Some(routes);
        self
    }

    /// The ledger the application writes through (the sandbox's operator acts use it too, so
    /// SQLite keeps one writer).
    pub fn ledger(&self) -> &Ledger {
        &self.state.ledger
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then drains requests and stops the workers.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let workers = Workers::start(self.state.clone());
        let socket_mode = crate::slack::socket::SocketMode::start(&self.state);
        let listening = self.state.ledger.wake_on_commits(self.state.wake.clone());
        let mut app = router(self.state.clone());
        if let Some(extra) = self.extra {
            app = app.merge(extra);
        }
        tracing::info!(addr = %self.listener.local_addr()?, "countersign listening");
        // Slow clients are cut off and connections capped (`http_server`); shutdown stops
        // accepting and lets requests in flight finish, as `axum::serve` did.
        let limits = crate::http_server::Limits::from(&self.state.timing);
        let stopping = self.state.stopping.clone();
        let shutdown = async move {
            shutdown.await;
            // Waiting gateway calls answer now instead of holding the drain.
            stopping.cancel();
        };
        let served = crate::http_server::serve(self.listener, app, limits, shutdown).await;
        // Acknowledged slash commands finish (or their requesters are told) before the
        // ledger closes.
        let state = &self.state;
        state
            .commands
            .drain(state.timing.command_drain, &state.http)
            .await;
        workers.stop().await;
        if let Some(socket_mode) = socket_mode {
            socket_mode.stop().await;
        }
        if let Some(listening) = listening {
            listening.abort();
        }
        revoke_access_token(&self.state.onepassword).await;
        self.state.ledger.close().await;
        served
    }
}

/// How long shutdown waits for 1Password to revoke the access token.
const REVOKE_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Revokes the cached 1Password token so it does not outlive the process: best effort, bounded,
/// and a failure is only logged, since exit must not wait on 1Password.
async fn revoke_access_token(onepassword: &OnePassword) {
    match tokio::time::timeout(REVOKE_WITHIN, onepassword.revoke_token()).await {
        Ok(Ok(true)) => tracing::info!("1Password access token revoked"),
        Ok(Ok(false)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not revoke the 1Password access token"),
        Err(_) => tracing::warn!("1Password did not answer the token revocation in time"),
    }
}

pub fn router(state: AppState) -> Router {
    crate::api::routes()
        .0
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
