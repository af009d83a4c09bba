//! Parsing slash commands: `/suspend <email> <reason…>`, `/restore <email> <reason…>`,
//! `/approvals [pending|mine|<email>]`, and `help` for each. Pure, so every malformed input
//! has a test and a usage message.

use crate::domain::{Action, Email, Reason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Propose {
        action: Action,
        email: Email,
        reason: Reason,
    },
    Approvals(Listing),
    /// `/approvals passkey`: a link to add another passkey (after proving one).
    AddPasskey,
    Help(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    Pending,
    Mine,
    /// The last drifts (changes made in 1Password outside countersign), for approvers.
    Drift,
    About(Email),
}

/// What went wrong, with the usage to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

fn usage(command: &str) -> String {
    match command {
        "suspend" => "Usage: `/suspend <email> <reason>`: propose suspending that 1Password user. The reason needs at least 10 characters.".into(),
        "restore" => "Usage: `/restore <email> <reason>`: propose restoring that 1Password user; two other approvers must agree.".into(),
        _ => "Usage: `/approvals [pending|mine|drift|<email>]`: list pending proposals, those you asked for or may decide, the last changes made in 1Password outside countersign, or proposals about one user. `/approvals passkey`: add another passkey (you confirm with one you have first).".into(),
    }
}

/// Slack sends `/suspend` (or a renamed command ending in it); the verb is what matters.
fn verb(command: &str) -> Option<&'static str> {
    let name = command.trim().trim_start_matches('/');
    ["suspend", "restore", "approvals"]
        .into_iter()
        .find(|v| name.ends_with(v))
}

/// Slack turns a typed address into `<mailto:a@b.com|a@b.com>`; take the address back out.
fn email_argument(raw: &str) -> Result<Email, String> {
    let unwrapped = raw
        .strip_prefix("<mailto:")
        .and_then(|rest| rest.strip_suffix('>'))
        .map(|inner| inner.split('|').next().unwrap_or(inner))
        .unwrap_or(raw);
    Email::parse(unwrapped)
}

pub fn parse(command: &str, text: &str) -> Result<Command, CommandError> {
    let Some(verb) = verb(command) else {
        return Err(CommandError(format!(
            "countersign does not know the command {command}."
        )));
    };
    let text = text.trim();
    if text.eq_ignore_ascii_case("help") || (text.is_empty() && verb != "approvals") {
        return Ok(Command::Help(usage(verb)));
    }
    let fail = |why: String| CommandError(format!("{why}\n{}", usage(verb)));
    if verb == "approvals" && text.eq_ignore_ascii_case("passkey") {
        return Ok(Command::AddPasskey);
    }
    if verb == "approvals" {
        return Ok(Command::Approvals(
            match text.to_ascii_lowercase().as_str() {
                "" | "pending" => Listing::Pending,
                "mine" => Listing::Mine,
                "drift" => Listing::Drift,
                other => Listing::About(
                    email_argument(other)
                        .map_err(|e| fail(format!("That is not a filter or an email: {e}.")))?,
                ),
            },
        ));
    }
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let email = email_argument(first)
        .map_err(|e| fail(format!("The first word must be the user's email: {e}.")))?;
    let reason = Reason::parse(rest).map_err(|e| fail(format!("A reason is required: {e}.")))?;
    let action = if verb == "suspend" {
        Action::Suspend
    } else {
        Action::Restore
    };
    Ok(Command::Propose {
        action,
        email,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn propose(command: &str, text: &str) -> Command {
        parse(command, text).unwrap()
    }

    #[test]
    fn suspend_takes_an_email_and_a_reason() {
        let Command::Propose {
            action,
            email,
            reason,
        } = propose(
            "/suspend",
            "alice@example.com  phished at 3am, token reused",
        )
        else {
            panic!("not a proposal")
        };
        assert_eq!(action, Action::Suspend);
        assert_eq!(email.as_str(), "alice@example.com");
        assert_eq!(reason.as_str(), "phished at 3am, token reused");
    }

    #[test]
    fn slacks_mailto_form_is_accepted() {
        let command = propose(
            "/restore",
            "<mailto:Alice@Example.com|Alice@Example.com> laptop recovered and wiped",
        );
        assert!(
            matches!(command, Command::Propose { action: Action::Restore, ref email, .. } if email.as_str() == "alice@example.com")
        );
    }

    #[test]
    fn a_renamed_command_keeps_its_verb() {
        assert!(matches!(
            propose("/cs-suspend", "a@example.com phished at 3am"),
            Command::Propose {
                action: Action::Suspend,
                ..
            }
        ));
    }

    #[test]
    fn empty_text_and_help_show_usage() {
        assert!(matches!(propose("/suspend", ""), Command::Help(_)));
        assert!(matches!(propose("/restore", " HELP "), Command::Help(_)));
        assert!(matches!(propose("/approvals", "help"), Command::Help(_)));
    }

    #[test]
    fn malformed_input_is_refused_with_usage() {
        for (command, text) in [
            ("/suspend", "alice phished at 3am"),
            ("/suspend", "alice@example.com"),
            ("/suspend", "alice@example.com too short"),
            ("/approvals", "everything"),
        ] {
            let error = parse(command, text).unwrap_err();
            assert!(error.0.contains("Usage"), "{command} {text}: {}", error.0);
        }
    }

    #[test]
    fn approvals_lists_pending_by_default() {
        assert_eq!(
            propose("/approvals", ""),
            Command::Approvals(Listing::Pending)
        );
        assert_eq!(
            propose("/approvals", "mine"),
            Command::Approvals(Listing::Mine)
        );
        assert!(matches!(
            propose("/approvals", "bob@example.com"),
            Command::Approvals(Listing::About(_))
        ));
    }
}
