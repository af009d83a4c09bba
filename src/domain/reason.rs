use serde::{Deserialize, Serialize};

use super::text::check_free_text;

/// Why an action is asked for or denied: trimmed, at least 10 characters and at most 1000 bytes
/// (1000 characters for reasons recorded before the byte limit), so that the ledger
/// always says something an auditor can read, and free text (no control characters but
/// newline and tab, [`check_free_text`]).
///
/// Read back from the ledger (serde), a reason is taken as it was recorded: reasons accepted
/// before the control-character rule must still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub const MIN: usize = 10;
    pub const MAX: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let reason = Self::recorded(raw)?;
        check_free_text("reason", reason.as_str())?;
        // The limit holds for what is stored: bytes, not characters (an emoji is four).
        let bytes = reason.as_str().len();
        if bytes > Self::MAX {
            return Err(format!(
                "reason must be at most {} bytes as stored (got {bytes}; a character outside ASCII takes 2 to 4)",
                Self::MAX
            ));
        }
        Ok(reason)
    }

    /// The rules every reason ever recorded met: trimmed, and of a readable length.
    fn recorded(raw: &str) -> Result<Self, String> {
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

/// How serde reads a reason: only the ledger's own documents hold one (requests carry text,
/// parsed with [`Reason::parse`]), and what it recorded before a rule still reads.
impl TryFrom<String> for Reason {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::recorded(&value)
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
    fn a_reason_with_a_control_character_other_than_newline_or_tab_is_rejected() {
        assert!(Reason::parse("line one\nline\ttwo").is_ok());
        let refused = Reason::parse("vault export\u{0} at 3am").unwrap_err();
        assert!(refused.contains("control character (U+0000"), "{refused}");
        assert!(Reason::parse("vault export \u{1b}[31m at 3am").is_err());
    }

    #[test]
    fn a_reason_recorded_before_the_control_character_rule_still_reads() {
        let recorded: Reason = serde_json::from_str("\"vault export\\u0000 at 3am\"").unwrap();
        assert_eq!(recorded.as_str(), "vault export\u{0} at 3am");
    }

    #[test]
    fn a_reason_over_a_thousand_characters_is_rejected() {
        assert!(Reason::parse(&"x".repeat(1000)).is_ok());
        assert!(Reason::parse(&"x".repeat(1001)).is_err());
    }
}
