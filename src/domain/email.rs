use serde::{Deserialize, Serialize};

/// An email address, trimmed and lowercased so that "Alice@Example.com" and
/// "alice@example.com" are the same person when we compare an approver with a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("email is empty".into());
        }
        if email.len() > 254 {
            return Err("email is longer than 254 characters".into());
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{raw:?} is not an email address: it contains spaces"
            ));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(format!("{raw:?} is not an email address: it has no @"));
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok || email.contains(['<', '>', '"', ',', ';']) {
            return Err(format!("{raw:?} is not an email address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

super::schema::string_schema!(
    Email,
    "An email address, lowercased.",
    super::schema::custom("email"),
    None
);

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn an_address_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "alice@@example.com",
            "alice@example..com",
            "<alice@example.com>",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
