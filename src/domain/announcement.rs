//! What happened to a proposal that its card's thread should tell, as facts: the services
//! that decide and execute emit these, and the Slack adapter alone words them.

use serde::{Deserialize, Serialize};

use super::{Outcome, ProposalId, SlackUserId, UserState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Announcement {
    /// An approval counted; `count` of `required` so far.
    Approved {
        by: SlackUserId,
        count: u32,
        required: u32,
        /// The vote was confirmed with the approver's passkey.
        #[serde(default)]
        passkey: bool,
    },
    /// Denied by an approver, or (`by: None`) ended by countersign itself.
    Denied {
        by: Option<SlackUserId>,
        reason: String,
    },
    /// A further report about the same user and action was folded in.
    EvidenceAdded { platform: String, reason: String },
    /// Half way to expiry with no decision: these approvers are reminded.
    Reminder {
        users: Vec<SlackUserId>,
        groups: Vec<String>,
    },
    /// Still pending long after its card: brought to these channels, groups and people.
    Escalated {
        channels: Vec<String>,
        groups: Vec<String>,
        users: Vec<SlackUserId>,
    },
    /// 1Password carried the action out (or found it already done).
    Executed { outcome: Outcome, state: UserState },
    /// The execution failed; an approver may retry.
    ExecutionFailed { error: String },
    /// A newer decision about the same user overtook this proposal.
    Superseded { by: ProposalId },
    /// A passkey answered with a signature counter that did not advance, as a cloned one's
    /// would; the vote was refused.
    PossiblyClonedPasskey {
        by: SlackUserId,
        credential_id: String,
    },
}

impl Announcement {
    /// Whether an incident card's row already shows this (an approval, the outcome), so the
    /// card's shared thread need not tell it again.
    pub fn shown_on_row(&self) -> bool {
        matches!(
            self,
            Announcement::Approved { .. } | Announcement::Executed { .. }
        )
    }
}
