//! The URLs among the settings, each checked for what it may name: the public origin of the
//! passkey pages, the vendors' base URLs, the API version segment; and any URL shown without
//! its password.

use super::ConfigError;

/// `PUBLIC_URL`: an origin (scheme, host, optional port; no path) that is a secure context for
/// WebAuthn: `https://`, or `http://localhost` for the sandbox and tests. An IP literal is not
/// a valid relying-party id.
pub(super) fn parse_public_url(raw: Option<&str>) -> Result<Option<url::Url>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let invalid = |why: &str| ConfigError::Invalid(format!("PUBLIC_URL {raw:?} {why}"));
    let url = url::Url::parse(raw).map_err(|_| invalid("is not a URL"))?;
    let host = match url.host() {
        Some(url::Host::Domain(host)) => host.to_owned(),
        Some(_) => return Err(invalid("names an IP address: a passkey needs a host name (use http://localhost:<port> on this machine)")),
        None => return Err(invalid("names no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        _ => return Err(invalid("must be https:// (http:// only for localhost)")),
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(invalid("must be an origin, without a path"));
    }
    Ok(Some(url))
}

/// A version segment such as `v1beta1` or `v1`: one path segment, nothing that could
/// change which host or path is called.
pub(super) fn parse_api_version(raw: &str) -> Result<String, ConfigError> {
    let version = raw.trim();
    let valid = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(ConfigError::Invalid(format!(
            "OP_API_VERSION {raw:?} must be one path segment such as v1beta1 or v1"
        )));
    }
    Ok(version.to_owned())
}

/// `url` with any password in it shown as `[redacted]`, for messages, logs and `Debug`: the
/// user part's (`postgres://user:secret@host/db` shows as `postgres://user:[redacted]@host/db`)
/// and any `password=` parameter's, in a URL's query or a `key=value` connection string.
/// Everything up to the last `@` counts as the user part, so a password holding a character a
/// URL forbids is hidden too (with more than it, at worst).
pub fn redacted_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (scheme, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
    let mut shown = String::from(scheme);
    let mut tail = rest;
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            shown.push_str(&rest[..=colon]);
            shown.push_str(REDACTED);
            tail = &rest[at..];
        }
    }
    // `password=…`, `sslpassword=…`: the value runs to the next parameter or word.
    while let Some(at) = tail.to_ascii_lowercase().find("password=") {
        let value = at + "password=".len();
        let end = tail[value..]
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .map_or(tail.len(), |n| value + n);
        shown.push_str(&tail[..value]);
        shown.push_str(REDACTED);
        tail = &tail[end..];
    }
    shown.push_str(tail);
    shown
}

/// A Slack or 1Password base URL, the setting `name`'s: `https://` anywhere; `http://` only on
/// a loopback host (127.0.0.0/8, `::1`, `localhost`), where the sandbox's and the tests'
/// stand-ins live, since a token or a secret would otherwise cross the network in clear.
pub(super) fn vendor_url(name: &str, raw: &str) -> Result<String, ConfigError> {
    let refused = |why: &str| {
        ConfigError::Invalid(format!(
            "{name} {:?} {why}: use https:// (http:// only on a loopback host: 127.0.0.0/8, ::1 or localhost)",
            redacted_url(raw)
        ))
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| refused("is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        "http" => Err(refused("is plain http:// to a host off this machine")),
        _ => Err(refused("is neither https:// nor http://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_shows_without_its_password() {
        for (url, shown) in [
            (
                "postgres://user:secret@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            (
                "postgresql://user:p%40ss:w0rd@host:5432/db?sslmode=require",
                "postgresql://user:[redacted]@host:5432/db?sslmode=require",
            ),
            // Not a valid URL, and a password still
            (
                "postgres://user:pa/ss@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            (
                "postgres://user@host/db?sslmode=require&password=secret",
                "postgres://user@host/db?sslmode=require&password=[redacted]",
            ),
            (
                "host=db user=countersign password=secret dbname=countersign",
                "host=db user=countersign password=[redacted] dbname=countersign",
            ),
            ("postgres://user@host/db", "postgres://user@host/db"),
            ("postgres://host/db", "postgres://host/db"),
            ("sqlite://countersign.db", "sqlite://countersign.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }

    #[test]
    fn plain_http_is_allowed_only_on_a_loopback_host() {
        for url in [
            "http://127.0.0.1:8081",
            "http://127.0.0.5/api",
            "http://[::1]:9000",
            "http://localhost:3000/api",
            "http://LOCALHOST",
        ] {
            assert!(vendor_url("OP_API_URL", url).is_ok(), "{url} was refused");
        }
        for url in [
            "http://10.0.0.1",
            "http://example.com",
            "http://localhost.example.com",
            "http://[::2]",
            "http://0.0.0.0:8080",
        ] {
            let refused = vendor_url("OP_API_URL", url).expect_err(url).to_string();
            assert!(refused.contains("OP_API_URL"), "{refused}");
            assert!(refused.contains("https://"), "{refused}");
        }
    }

    #[test]
    fn an_api_url_is_https_anywhere_and_nothing_else() {
        for url in [
            "https://api.1password.eu",
            "https://10.0.0.1/api",
            "https://localhost",
        ] {
            assert!(
                vendor_url("SLACK_API_URL", url).is_ok(),
                "{url} was refused"
            );
        }
        for url in [
            "ftp://127.0.0.1/api",
            "ws://localhost",
            "api.1password.com",
            "",
        ] {
            let refused = vendor_url("SLACK_API_URL", url).expect_err(url).to_string();
            assert!(refused.contains("SLACK_API_URL"), "{refused}");
        }
    }

    #[test]
    fn an_api_version_is_one_path_segment() {
        assert_eq!(parse_api_version(" v1 ").unwrap(), "v1");
        for bad in ["", "v1/../admin", "v1?x", "https://evil.example"] {
            assert!(parse_api_version(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
