//! Who the sandbox starts with: Slack people (three approvers, one who is also a 1Password
//! user, one who may not decide), the 1Password directory (everyday users and the odd ones the
//! published `User` allows), and the default policy.

use super::onepassword::{Role, SeedUser};

/// Slack people: three approvers, one who is also a 1Password user, one who may not decide.
pub(super) const SLACK_USERS: [(&str, &str, &str, bool); 5] = [
    ("U0BOB", "Bob (on call)", "bob@example.com", true),
    ("U0CAT", "Cat (security)", "cat@example.com", true),
    ("U0DAN", "Dan (IT)", "dan@example.com", true),
    ("U0ALICE", "Alice", "alice@example.com", false),
    ("U0EVE", "Eve (not an approver)", "eve@example.com", false),
];

/// The 1Password directory: ids are 26 uppercase letters and digits, as 1Password's are.
const ONEPASSWORD_USERS: [(&str, &str, &str, &str); 5] = [
    (
        "ALICE0000000000000000000AA",
        "alice@example.com",
        "Alice Example",
        "ACTIVE",
    ),
    (
        "MALLORY00000000000000000AA",
        "mallory@example.com",
        "Mallory Example",
        "SUSPENDED",
    ),
    (
        "CAROL0000000000000000000AA",
        "carol@example.com",
        "Carol Example",
        "ACTIVE",
    ),
    (
        "DAVE00000000000000000000AA",
        "dave@example.com",
        "Dave Example",
        "ACTIVE",
    ),
    (
        "BOB000000000000000000000AA",
        "bob@example.com",
        "Bob Example",
        "ACTIVE",
    ),
];

/// Users who show what the published `User` allows beside the everyday ones: every field is
/// optional, `state` may be STATE_UNSPECIFIED, and some users cannot be suspended.
fn odd_users() -> Vec<SeedUser> {
    vec![
        SeedUser {
            display_name: None,
            ..SeedUser::member(
                "GRACE0000000000000000000AA",
                "grace@example.com",
                "",
                "ACTIVE",
            )
        },
        SeedUser::member(
            "HEIDI0000000000000000000AA",
            "heidi@example.com",
            "Heidi (invited)",
            "STATE_UNSPECIFIED",
        ),
        SeedUser {
            role: Role::Admin,
            externally_managed: true,
            ..SeedUser::member(
                "OWEN00000000000000000000AA",
                "owen@example.com",
                "Owen (admin managed by the IdP)",
                "ACTIVE",
            )
        },
    ]
}

pub(super) fn seed_users() -> Vec<SeedUser> {
    let everyday = ONEPASSWORD_USERS
        .iter()
        .map(|(id, email, name, state)| SeedUser::member(id, email, name, state));
    everyday.chain(odd_users()).collect()
}

pub(super) const POLICY: &str = r#"
protected = ["dave@example.com"]
[approvers]
users = ["U0BOB", "U0CAT", "U0DAN"]
[suspend]
approvals = 1
ttl = "30m"
[restore]
approvals = 2
ttl = "24h"
step_up = "passkey"
"#;
