use serde::{Deserialize, Serialize};

/// Why an action is asked for or denied: trimmed, 10 to 1000 characters, so that the ledger
/// always says something an auditor can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub const MIN: usize = 10;
    pub const MAX: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let reason = raw.trim();
        let len = reason.chars().count();
        if len < Self::MIN {
            return Err(format!(
                "reason must be at least {} characters (got {len})",
                Self::MIN
            ));
        }
        if len > Self::MAX {
            return Err(format!(
                "reason must be at most {} characters (got {len})",
                Self::MAX
            ));
        }
        Ok(Self(reason.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> Self {
        value.0
    }
}

super::schema::string_schema!(
    Reason,
    "Why; trimmed.",
    None,
    Some((Reason::MIN, Reason::MAX))
);

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn a_reason_is_trimmed() {
        assert_eq!(
            Reason::parse("  vault export at 3am  ").unwrap().as_str(),
            "vault export at 3am"
        );
    }

    #[test]
    fn a_reason_under_ten_characters_is_rejected() {
        assert!(Reason::parse("   0123456789   ").is_ok());
        assert!(Reason::parse("  012345678   ").is_err());
    }

    #[test]
    fn a_reason_over_a_thousand_characters_is_rejected() {
        assert!(Reason::parse(&"x".repeat(1000)).is_ok());
        assert!(Reason::parse(&"x".repeat(1001)).is_err());
    }
}
