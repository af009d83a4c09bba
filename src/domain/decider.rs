//! Who is asking to decide: a Slack account as the adapter resolved it at click time, and
//! whether it is a colleague who may decide at all (DESIGN §2, "who counts as a person").

use super::{Email, SlackUserId};

/// A Slack user asking to approve, deny or retry: `is_approver` is the policy's answer at
/// click time, `email` their profile email (None when Slack shows none), `standing` what
/// Slack's directory says the account is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub slack_user_id: SlackUserId,
    pub name: String,
    pub email: Option<Email>,
    pub is_approver: bool,
    pub standing: Standing,
}

/// What kind of account Slack says a user is. Only a colleague may decide, even when the
/// policy lists the account by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A full member of countersign's own workspace.
    Colleague,
    /// A multi- or single-channel guest (`is_restricted`, `is_ultra_restricted`).
    Guest,
    /// A bot or an app user (`is_bot`, `is_app_user`).
    Bot,
    /// A deactivated account (`deleted`).
    Deactivated,
    /// A member of another workspace, present through Slack Connect.
    OtherWorkspace,
}

impl Standing {
    /// Why the account may not decide, told to the person who clicked.
    pub fn refusal(self) -> &'static str {
        match self {
            Standing::Colleague => "You may decide.",
            Standing::Guest => "Slack lists you as a guest of this workspace, and guests cannot approve, deny or retry, even when the policy names them.",
            Standing::Bot => "This account is a bot or an app, and only people can approve, deny or retry.",
            Standing::Deactivated => "This account is deactivated in Slack, so it cannot approve, deny or retry.",
            Standing::OtherWorkspace => "You belong to another Slack workspace (Slack Connect), and only members of countersign's own workspace can approve, deny or retry.",
        }
    }
}
