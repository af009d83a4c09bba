//! `countersign sandbox` started in-process on a free loopback port.

use std::time::Duration;

/// Starts the sandbox and returns its base URL once it answers.
pub async fn start_sandbox() -> String {
    start_sandbox_with(false).await
}

/// Starts the sandbox (in Socket Mode, or over Slack's HTTP routes) and returns its base URL
/// once it answers.
pub async fn start_sandbox_with(socket_mode: bool) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}").parse().unwrap();
    tokio::spawn(async move {
        if let Err(error) =
            countersign::sandbox::run(bind, socket_mode, std::future::pending()).await
        {
            eprintln!("the sandbox stopped: {error:#}");
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    // 20 s: a loaded CI machine builds the app slowly; a healthy one answers in milliseconds.
    for _ in 0..800 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return base;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the sandbox never answered");
}
