//! The sandbox: countersign with local stand-ins for the Slack Web API and the 1Password Users
//! API, for a newcomer to try and for the test suite. The stand-ins are real HTTP servers on
//! 127.0.0.1 that speak the wire formats of DESIGN §4–5. Only `countersign sandbox` (and the
//! tests) start them; `serve` never does.

pub mod onepassword;
mod page_api;
mod run;
mod seeds;
pub mod signing;
pub mod slack;
mod wave;
mod welcome;

pub use run::{run, CHANNEL, TEAM};

/// Serves `app` on a free loopback port; returns its base URL (`http://127.0.0.1:PORT`) and the
/// server task, which the stand-in aborts when dropped.
async fn serve_on_loopback(
    app: axum::Router,
    what: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind {what}: {e}"));
    let base_url = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .unwrap_or_else(|e| panic!("{what} server: {e}"));
    });
    (base_url, server)
}
