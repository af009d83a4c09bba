use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A proposal's id: a UUIDv7, so ids sort by creation time and serve as a list cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProposalId(Uuid);

impl ProposalId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Uuid::parse_str(raw.trim())
            .map(Self)
            .map_err(|_| format!("{raw:?} is not a proposal id"))
    }
}

impl std::str::FromStr for ProposalId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Default for ProposalId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ProposalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Uppercase alphanumerics of a fixed length: the shape of 1Password's ids.
fn parse_op_id(raw: &str, what: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        Ok(id.to_owned())
    } else {
        Err(format!(
            "{raw:?} is not a 1Password {what} id (26 uppercase letters and digits)"
        ))
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                let parse: fn(&str) -> Result<String, String> = $parse;
                parse(raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A 1Password user's id.
    OnePasswordUserId,
    |raw| parse_op_id(raw, "user")
);
string_id!(
    /// A 1Password account's id.
    AccountId,
    |raw| parse_op_id(raw, "account")
);
string_id!(
    /// A Slack user id (`U…` or `W…`): the identity of every human decision.
    SlackUserId,
    |raw| {
        let id = raw.trim();
        let shaped = (2..=32).contains(&id.len())
            && (id.starts_with('U') || id.starts_with('W'))
            && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if shaped {
            Ok(id.to_owned())
        } else {
            Err(format!("{raw:?} is not a Slack user id"))
        }
    }
);

super::schema::string_schema!(
    ProposalId,
    "A proposal id (UUIDv7).",
    super::schema::uuid(),
    None
);
super::schema::string_schema!(
    OnePasswordUserId,
    "A 1Password user id: 26 uppercase letters and digits.",
    None,
    Some((26, 26))
);
super::schema::string_schema!(
    AccountId,
    "A 1Password account id: 26 uppercase letters and digits.",
    None,
    Some((26, 26))
);
super::schema::string_schema!(
    SlackUserId,
    "A Slack user id (U… or W…).",
    None,
    Some((2, 32))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onepassword_ids_are_26_uppercase_alphanumerics() {
        assert!(OnePasswordUserId::parse("IR7VJHJ36JHINBEFLLQ4FJOAHE").is_ok());
        assert!(OnePasswordUserId::parse("ir7vjhj36jhinbefllq4fjoahe").is_err());
        assert!(OnePasswordUserId::parse("IR7V").is_err());
        assert!(AccountId::parse("A1B2C3D4E5F6G7H8J9K0L1M2N3").is_ok());
    }

    #[test]
    fn slack_user_ids_start_with_u_or_w() {
        assert!(SlackUserId::parse("U0AAA").is_ok());
        assert!(SlackUserId::parse("W0AAA").is_ok());
        assert!(SlackUserId::parse("C0AAA").is_err());
        assert!(SlackUserId::parse("U0a b").is_err());
    }

    #[test]
    fn proposal_ids_sort_by_creation() {
        let first = ProposalId::new();
        let second = ProposalId::new();
        assert!(first < second);
        assert_eq!(ProposalId::parse(&first.to_string()).unwrap(), first);
    }
}
