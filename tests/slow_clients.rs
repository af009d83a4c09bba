//! Slow clients: a client that trickles its headers or its body is cut off, and the server
//! holds at most `max_connections` connections at once (more wait to be accepted).

mod support;

use std::time::Duration;

use countersign::config::Timing;
use countersign::ledger::Scope;
use support::app::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Far below "forever", far above the 1 s timeouts the tests set.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(8);
/// How often a slow client sends its next byte (one a second, sped up for the suite).
const TRICKLE: Duration = Duration::from_millis(200);

fn short_timeouts() -> Timing {
    Timing {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..test_timing()
    }
}

async fn spawn(timing: Timing) -> TestApp {
    spawn_app_with(&policy_with("", ""), timing).await
}

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Writes `bytes` one at a time, a `TRICKLE` apart, until done or the server stops listening.
fn trickle(mut writer: OwnedWriteHalf, bytes: Vec<u8>) {
    tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(TRICKLE).await;
        }
    });
}

/// Everything the server sends until it closes the connection (or resets it), or `None`
/// when it is still open after `CUT_OFF_WITHIN`.
async fn read_until_closed(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(CUT_OFF_WITHIN, read_all)
        .await
        .ok()
        .map(|()| received)
}

/// A raw `POST /v1/proposals` whose headers are sent and whose body is not: the connection's
/// two halves and the body still to send.
async fn start_proposal_post(app: &TestApp) -> (OwnedReadHalf, OwnedWriteHalf, Vec<u8>) {
    let token = app.token(&[Scope::ProposeSuspend]).await;
    let body = serde_json::to_vec(&suspend_alice()).unwrap();
    let head = format!(
        "POST /v1/proposals HTTP/1.1\r\nHost: countersign\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = TcpStream::connect(host_port(app)).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    (reader, writer, body)
}

#[tokio::test]
async fn a_client_sending_headers_one_byte_a_second_is_cut_off() {
    let app = spawn(short_timeouts()).await;
    let stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let (mut reader, writer) = stream.into_split();
    // A request line and a header that never end: a minute of bytes at this pace.
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: countersign\r\nX-Slow: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 300));
    trickle(writer, request);

    let received = read_until_closed(&mut reader).await;

    let received = received.expect("the server still waits for a client trickling its headers");
    assert!(
        !String::from_utf8_lossy(&received).contains(" 200 "),
        "the trickled request was served: {}",
        String::from_utf8_lossy(&received)
    );
    app.shut_down().await;
}

#[tokio::test]
async fn a_client_sending_its_body_one_byte_a_second_is_cut_off() {
    let app = spawn(short_timeouts()).await;
    let (mut reader, writer, body) = start_proposal_post(&app).await;
    trickle(writer, body);

    let received = read_until_closed(&mut reader).await;

    let received = received.expect("the server still waits for a client trickling its body");
    let text = String::from_utf8_lossy(&received);
    // Either a clear 408 problem, or the connection closed without an answer; never a proposal.
    if !received.is_empty() {
        assert!(text.starts_with("HTTP/1.1 408"), "answered {text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "answered {text}"
        );
        assert!(text.contains("\"status\":408"), "answered {text}");
    }
    let listed = app
        .get_json("/v1/proposals", &app.token(&[Scope::Read]).await)
        .await;
    assert_eq!(
        listed["proposals"].as_array().map(Vec::len),
        Some(0),
        "nothing was proposed: {listed}"
    );
    app.shut_down().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    // Long header timeouts here, so only a client closing can free a connection.
    let app = spawn(Timing {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(30),
        ..short_timeouts()
    })
    .await;
    let first = TcpStream::connect(host_port(&app)).await.unwrap();
    let _second = TcpStream::connect(host_port(&app)).await.unwrap();
    // Give the server a moment to accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let third = reqwest::Client::new()
        .get(format!("{}/healthz", app.address))
        .send();
    tokio::pin!(third);
    let early = tokio::time::timeout(Duration::from_millis(700), &mut third).await;
    assert!(
        early.is_err(),
        "a third connection was served while two were held: {early:?}"
    );

    drop(first);
    let answered = tokio::time::timeout(CUT_OFF_WITHIN, third)
        .await
        .expect("the waiting connection is served once another closes")
        .expect("the waiting request succeeds");
    assert_eq!(answered.status(), 200);
    app.shut_down().await;
}

#[tokio::test]
async fn a_normal_request_is_still_served_under_short_timeouts() {
    let app = spawn(Timing {
        max_connections: 4,
        ..short_timeouts()
    })
    .await;
    let token = app.token(&[Scope::ProposeSuspend]).await;

    // One connection, kept alive across requests.
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let health = client
            .get(format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    let created = client
        .post(format!("{}/v1/proposals", app.address))
        .bearer_auth(&token)
        .json(&suspend_alice())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);

    // A connection left idle past the header timeout is closed; a client just reconnects.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    app.shut_down().await;
}

#[tokio::test]
async fn shutdown_waits_for_a_request_in_flight_and_then_stops() {
    let app = spawn(short_timeouts()).await;
    let (mut reader, mut writer, body) = start_proposal_post(&app).await;
    writer.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Shutdown begins with the request's body half sent; the rest follows within its time.
    let shutting_down = tokio::spawn(async move { app.shut_down().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.write_all(&body[10..]).await.unwrap();

    let received = read_until_closed(&mut reader).await.expect("an answer");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 201"), "answered {text}");
    tokio::time::timeout(CUT_OFF_WITHIN, shutting_down)
        .await
        .expect("shutdown finishes")
        .unwrap();
}
