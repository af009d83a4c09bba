//! The card's link to the alert, which a caller cannot disguise (DESIGN §4).

use super::mrkdwn::escape;

/// The alert link, which a caller cannot disguise: its label is the alert id only when the id
/// does not look like an address (else the fixed word "alert"), and the host the link really
/// leads to is shown in plain text beside it.
pub fn render(url: &str, alert_id: Option<&str>) -> String {
    let label = alert_id
        .filter(|id| !looks_like_address(id))
        .unwrap_or("alert");
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown host".to_owned());
    format!(
        "<{}|{}> (`{}`)",
        // A `|` would end the address early and show text of the caller's choosing.
        escape(url).replace('|', "%7C"),
        escape(label),
        escape(&host)
    )
}

/// Whether text reads as a URL or a host name ("https://…", "falcon.crowdstrike.com/…",
/// "10.0.0.1"), which a reader would take for where a link goes.
fn looks_like_address(text: &str) -> bool {
    let text = text.trim().to_ascii_lowercase();
    if text.contains("://") || text.starts_with("www.") {
        return true;
    }
    let host = text
        .split(['/', ':', '?', '#', ' ', '@'])
        .next()
        .unwrap_or_default();
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let last = labels.last().copied().unwrap_or_default();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && last.len() >= 2
        && last.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_id_that_looks_like_a_url_is_not_the_label() {
        let link = render(
            "https://evil.example/ldt",
            Some("https://falcon.crowdstrike.com/activity/detections/ldt:8f2c"),
        );
        assert!(
            link.starts_with("<https://evil.example/ldt|alert>"),
            "{link}"
        );
    }

    #[test]
    fn an_alert_id_that_looks_like_a_host_is_not_the_label() {
        for id in [
            "falcon.crowdstrike.com",
            "falcon.crowdstrike.com/x",
            "10.1.2.3",
            "www.example",
        ] {
            assert!(
                render("https://evil.example/", Some(id)).contains("|alert>"),
                "{id}"
            );
        }
    }

    #[test]
    fn a_plain_alert_id_is_the_label() {
        for id in ["ldt:8f2c", "INC-1234", "alert 42", "v1.2"] {
            let link = render("https://falcon.example.com/x", Some(id));
            assert!(link.contains(&format!("|{id}>")), "{link}");
        }
    }

    #[test]
    fn the_host_the_link_leads_to_is_shown_beside_it() {
        let link = render("https://evil.example/x", Some("ldt:8f2c"));
        assert!(link.ends_with("(`evil.example`)"), "{link}");
    }
}
