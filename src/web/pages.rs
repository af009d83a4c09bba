//! The HTML of the passkey pages: one `<button>` that starts the ceremony and a line that shows
//! its outcome as text. Everything shown is escaped; the page runs only `/passkey/passkey.js`.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::domain::{Proposal, Requester};

/// Allows this origin's script and requests, nothing else: no inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, kind: &str, body: &str, ready: bool) -> Response {
    let button = if ready {
        format!(
            r#"<button id="go" data-kind="{kind}">{}</button>"#,
            escape(title)
        )
    } else {
        String::new()
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>countersign · {title}</title>
<script src="/passkey/passkey.js" defer></script></head>
<body><main><h1>{title}</h1>{body}{button}<p id="outcome" role="status"></p></main></body></html>"#,
        title = escape(title),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// The enrollment page: names the Slack user it enrolls.
pub fn enroll(slack_user_id: &str) -> Response {
    let body = format!(
        "<p>This registers a passkey for Slack user <strong>{}</strong>. Your approvals of \
         restores will be confirmed with it.</p>",
        escape(slack_user_id)
    );
    page("Register a passkey", "enroll", &body, true)
}

/// The page that adds another passkey: an existing one is asked for first.
pub fn add(slack_user_id: &str) -> Response {
    let body = format!(
        "<p>This adds a passkey for Slack user <strong>{}</strong>. First confirm with a passkey \
         you already have; then register the new one.</p>",
        escape(slack_user_id)
    );
    page("Add a passkey", "add", &body, true)
}

/// The vote page: what is being approved, and the approvals so far.
pub fn vote(proposal: &Proposal) -> Response {
    let requester = |r: &Requester| match r {
        Requester::Integration { name, .. } => format!("automation {name}"),
        Requester::SlackUser { name, .. } => name.clone(),
    };
    let requesters: Vec<String> = proposal.requesters().map(requester).collect();
    let approvals: Vec<String> = proposal.approvals.iter().map(|a| a.name.clone()).collect();
    let body = format!(
        "<dl><dt>Action</dt><dd>{action} {name} ({email})</dd>\
         <dt>Reason</dt><dd>{reason}</dd><dt>Requested by</dt><dd>{requesters}</dd>\
         <dt>Approvals so far</dt><dd>{count} of {required}{by}</dd></dl>",
        action = proposal.action.as_str(),
        name = escape(&proposal.target.display_name),
        email = escape(proposal.target.email.as_str()),
        reason = escape(proposal.reason.as_str()),
        requesters = escape(&requesters.join(", ")),
        count = proposal.approvals.len(),
        required = proposal.approvals_required,
        by = if approvals.is_empty() {
            String::new()
        } else {
            format!(": {}", escape(&approvals.join(", ")))
        },
    );
    page("Approve with your passkey", "vote", &body, true)
}

/// A link that opens nothing: why, and no button.
pub fn closed(why: &str) -> Response {
    let body = format!("<p>{}</p>", escape(why));
    page("This link opens nothing", "closed", &body, false)
}

/// The one script of the pages: asks for options, runs the ceremony, sends the answer.
pub fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("passkey.js"),
    )
        .into_response()
}
