//! Slack's mrkdwn: text from anyone (a SOAR's reason, a display name, an email) is escaped
//! before it is put in a message, so it can neither mention a channel nor forge a link.

/// Escapes the three characters Slack's mrkdwn gives meaning to.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
