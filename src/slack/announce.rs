//! Words for the facts the services announce in a card's thread (`Announcement`): the one
//! place their Slack text is written.

use super::card::{outcome_text, slack_time, superseded_by, tally, tally_of};
use super::mrkdwn::escape;
use crate::domain::{Announcement, Proposal, Requester};

/// The thread reply that tells `fact` about proposal `p` (as it stands when posted).
pub fn render(fact: &Announcement, p: &Proposal) -> String {
    match fact {
        Announcement::Approved {
            by,
            count,
            required,
            passkey,
        } => format!(
            ":white_check_mark: <@{by}> approved{} · {}",
            if *passkey { " with a passkey" } else { "" },
            tally_of(*count, *required)
        ),
        Announcement::Denied {
            by: Some(by),
            reason,
        } => format!(":no_entry: <@{by}> denied: {}", escape(reason)),
        Announcement::Denied { by: None, reason } => {
            format!(
                ":no_entry: countersign ended this restore: {}",
                escape(reason)
            )
        }
        Announcement::Escalated {
            channels,
            groups,
            users,
        } => {
            let whom: Vec<String> = channels
                .iter()
                .map(|c| format!("<#{c}>"))
                .chain(groups.iter().map(|g| format!("<!subteam^{g}>")))
                .chain(users.iter().map(|u| format!("<@{u}>")))
                .collect();
            format!(
                ":rotating_light: Escalated: still waiting for a decision ({}), brought to {}",
                tally(p),
                whom.join(", ")
            )
        }
        Announcement::EvidenceAdded { platform, reason } => format!(
            ":heavy_plus_sign: Further report from {}: {}",
            escape(platform),
            escape(reason)
        ),
        Announcement::Reminder { users, groups } => {
            let mentions: Vec<String> = groups
                .iter()
                .map(|g| format!("<!subteam^{g}>"))
                .chain(users.iter().map(|u| format!("<@{u}>")))
                .collect();
            format!(
                ":bell: Still waiting for a decision: {} · expires {} · {}",
                tally(p),
                slack_time(p.expires_at),
                mentions.join(" ")
            )
        }
        Announcement::Executed { outcome, state } => cc_requester(
            p,
            format!(
                ":white_check_mark: {} ({}) {} · 1Password shows {}",
                escape(&p.target.display_name),
                escape(p.target.email.as_str()),
                outcome_text(*outcome),
                state.as_str()
            ),
        ),
        Announcement::ExecutionFailed { error } => cc_requester(
            p,
            format!(
                ":warning: Execution failed: {} · an approver may retry",
                escape(error)
            ),
        ),
        Announcement::Superseded { .. } => format!(
            ":fast_forward: Superseded: {}; countersign made no call for this proposal.",
            superseded_by(p)
        ),
        Announcement::PossiblyClonedPasskey { by, credential_id } => format!(
            ":rotating_light: A passkey of <@{by}> (credential `{}`) answered a vote on the {} of {} with a signature counter that did not advance, as a cloned passkey's would. The vote was refused. If it is not theirs: `countersign passkey revoke {}`.",
            escape(credential_id),
            match p.action {
                crate::domain::Action::Suspend => "suspension",
                crate::domain::Action::Restore => "restore",
            },
            escape(p.target.email.as_str()),
            escape(credential_id),
        ),
    }
}

/// A Slack requester hears how their request ended.
fn cc_requester(p: &Proposal, text: String) -> String {
    match &p.requester {
        Requester::SlackUser { slack_user_id, .. } => format!("{text} · cc <@{slack_user_id}>"),
        Requester::Integration { .. } => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::proposal;
    use crate::domain::{Action, Outcome, SlackUserId, UserState};

    #[test]
    fn an_approval_names_the_approver_and_the_tally_when_it_counted() {
        let p = proposal(Action::Restore, 2);
        let by = SlackUserId::parse("U0BOB").unwrap();
        let fact = Announcement::Approved {
            by,
            count: 1,
            required: 2,
            passkey: false,
        };
        assert_eq!(
            render(&fact, &p),
            ":white_check_mark: <@U0BOB> approved · 1 of 2 approvals — needs a second approver"
        );
    }

    #[test]
    fn a_denial_reason_cannot_mention_the_channel() {
        let p = proposal(Action::Suspend, 1);
        let fact = Announcement::Denied {
            by: None,
            reason: "<!channel> look".into(),
        };
        assert!(!render(&fact, &p).contains("<!channel>"));
    }

    #[test]
    fn an_outcome_says_what_1password_shows() {
        let p = proposal(Action::Suspend, 1);
        let fact = Announcement::Executed {
            outcome: Outcome::Suspended,
            state: UserState::Suspended,
        };
        assert!(render(&fact, &p).contains("suspended in 1Password · 1Password shows SUSPENDED"));
    }
}
