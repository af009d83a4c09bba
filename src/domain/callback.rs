//! A callback URL is a secret: webhook URLs carry tokens in their path or query. Holding one
//! as this type keeps it out of logs and `Debug`; only the token that set it sees it whole, and
//! the ledger's events name it by its host and a hash.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallbackUrl {
    url: String,
    host: String,
}

impl CallbackUrl {
    /// An absolute URL with a host; which schemes and hosts are allowed is the caller's policy.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|_| "callback_url is not a URL".to_owned())?;
        let host = url
            .host_str()
            .ok_or_else(|| "callback_url names no host".to_owned())?
            .to_ascii_lowercase();
        Ok(Self {
            url: raw.to_owned(),
            host,
        })
    }

    /// Whether a callback may go here: https to a host on the allow-list (`CALLBACK_ALLOWED_HOSTS`),
    /// or plain http to an allowed loopback host. Checked when the URL is given and again when
    /// a callback is delivered, so a host taken off the list is never called.
    pub fn check_allowed(&self, allowed: &[String]) -> Result<(), String> {
        let scheme = self
            .url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let loopback = matches!(self.host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
        match scheme.as_str() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err("callback_url must be https://".into()),
        }
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&self.host)) {
            return Err(format!(
                "callback host {:?} is not in CALLBACK_ALLOWED_HOSTS",
                self.host
            ));
        }
        Ok(())
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The whole URL, for the one request that delivers to it.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// How the ledger names this URL: its host and the SHA-256 of the whole, so an auditor can
    /// check a URL they hold against the record without the record holding it.
    pub fn reference(&self) -> Value {
        json!({"host": self.host, "sha256": hex::encode(Sha256::digest(self.url.as_bytes()))})
    }
}

impl TryFrom<String> for CallbackUrl {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<CallbackUrl> for String {
    fn from(url: CallbackUrl) -> Self {
        url.url
    }
}

impl std::fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallbackUrl({}, [redacted])", self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_URL: &str = "https://hooks.example.com/services/T000/B000/s3cr3tT0k3n";

    #[test]
    fn debug_shows_the_host_and_never_the_path() {
        let url = CallbackUrl::parse(SECRET_URL).unwrap();
        let printed = format!("{url:?}");
        assert!(printed.contains("hooks.example.com"));
        assert!(!printed.contains("s3cr3t"));
    }

    #[test]
    fn the_ledger_reference_is_the_host_and_a_hash() {
        let reference = CallbackUrl::parse(SECRET_URL).unwrap().reference();
        assert_eq!(reference["host"], "hooks.example.com");
        assert_eq!(reference["sha256"].as_str().unwrap().len(), 64);
        assert!(!reference.to_string().contains("s3cr3t"));
    }

    #[test]
    fn it_round_trips_through_json_whole() {
        let url = CallbackUrl::parse(SECRET_URL).unwrap();
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(serde_json::from_str::<CallbackUrl>(&json).unwrap(), url);
    }

    #[test]
    fn only_allowed_hosts_over_https_or_loopback_http_are_allowed() {
        let allowed = vec!["hooks.example.com".to_owned(), "127.0.0.1".to_owned()];
        let check = |raw: &str| CallbackUrl::parse(raw).unwrap().check_allowed(&allowed);
        assert!(check("https://HOOKS.example.com/x").is_ok());
        assert!(check("http://127.0.0.1:9000/x").is_ok());
        assert!(check("http://hooks.example.com/x").is_err());
        assert!(check("https://evil.example.net/x").is_err());
    }

    #[test]
    fn a_url_without_a_host_is_refused() {
        assert!(CallbackUrl::parse("mailto:someone@example.com").is_err());
    }
}
