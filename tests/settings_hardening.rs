//! What the real binary does with dangerous settings: a database password never shows in
//! what it prints or logs, and `serve` will not talk to Slack or 1Password in clear text
//! except on this machine, where the sandbox's and the tests' stand-ins live.
//!
//! The migrate test needs `COUNTERSIGN_TEST_POSTGRES` (`.ci/postgres start`); it is skipped
//! with a message without it, and required under `CI=true`.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::database;
use support::process::World;

const PASSWORD: &str = "never-print-me-7f3a";

/// `countersign migrate` against `database_url`, with every log line there is.
fn migrate(database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `countersign serve` with the world's settings and `name=value`, on a free port; its exit
/// and what it printed, or a failure if it is still running after 20 s.
fn serve_with(world: &World, name: &str, value: &str) -> Output {
    let mut child = world
        .command()
        .arg("serve")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env(name, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("poll serve").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap serve");
            panic!("serve started with {name}={value}:\n{}", printed(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("reap serve")
}

#[tokio::test]
async fn migrate_never_prints_the_database_password() {
    let Some(server) = database::postgres_server() else {
        return;
    };
    let mut url = url::Url::parse(&database::fresh_postgres(&server).await).unwrap();
    // The test server trusts local connections, so any password gets in.
    url.set_password(Some(PASSWORD)).unwrap();

    let output = migrate(url.as_str());

    assert!(output.status.success(), "{}", printed(&output));
    let printed = printed(&output);
    assert!(printed.contains("migrations applied"), "{printed}");
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
}

#[tokio::test]
async fn migrate_refusing_a_connection_string_never_prints_its_password() {
    let connection_string = format!("host=127.0.0.1 user=countersign password={PASSWORD}");

    let output = migrate(&connection_string);

    assert!(!output.status.success(), "{}", printed(&output));
    let printed = printed(&output);
    assert!(printed.contains("DATABASE_URL"), "{printed}");
    assert!(
        !printed.contains(PASSWORD),
        "the password was printed:\n{printed}"
    );
}

#[tokio::test]
async fn serve_refuses_a_plain_http_1password_url_off_this_machine() {
    let world = World::start().await;

    let output = serve_with(&world, "OP_API_URL", "http://op.example.com");

    assert!(!output.status.success());
    let printed = printed(&output);
    assert!(printed.contains("OP_API_URL"), "{printed}");
    assert!(printed.contains("https"), "{printed}");
}

#[tokio::test]
async fn serve_refuses_a_plain_http_slack_url_off_this_machine() {
    let world = World::start().await;

    let output = serve_with(&world, "SLACK_API_URL", "http://slack.example.com/api");

    assert!(!output.status.success());
    let printed = printed(&output);
    assert!(printed.contains("SLACK_API_URL"), "{printed}");
    assert!(printed.contains("https"), "{printed}");
}
