//! The approval policy (DESIGN §2): who may decide, how many approvals each action needs and
//! how long a proposal waits. Parsed from TOML; a file that would weaken the two-person rule
//! for restores is refused at load.

use chrono::Duration;
use serde::Deserialize;

use super::escalation::Escalation;
use super::{Action, Confidence, Email, SlackUserId};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Members {
    pub users: Vec<SlackUserId>,
    pub groups: Vec<String>,
}

impl Members {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub protected: Vec<Email>,
    pub approvers: Members,
    /// `None` means "the approvers".
    pub requesters: Option<Members>,
    pub suspend_approvals: u32,
    pub suspend_ttl: Duration,
    pub suspend_requester_counts: bool,
    pub restore_approvals: u32,
    pub restore_ttl: Duration,
    pub suspend_step_up: StepUp,
    pub restore_step_up: StepUp,
    pub auto_approve: Vec<AutoApproveRule>,
    pub suspend_escalation: Option<Escalation>,
    pub restore_escalation: Option<Escalation>,
}

/// What an approving vote must prove beyond the Slack session that clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    /// The approver's own passkey, user verification required.
    Passkey,
    /// The click alone: the Slack session is the whole proof.
    None,
}

impl StepUp {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "passkey" => Ok(StepUp::Passkey),
            "none" => Ok(StepUp::None),
            other => Err(format!("step_up is \"passkey\" or \"none\", not {other:?}")),
        }
    }
}

/// An operator's explicit rule that approves matching suspensions without a human: the
/// proposing integration's name (an API token's or a gateway client's) and the alert's
/// confidence must match, under an hourly cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproveRule {
    pub name: String,
    pub integration: String,
    /// `None`: any report of this integration, with or without a confidence (a gateway
    /// client's calls carry none).
    pub min_confidence: Option<Confidence>,
    pub max_per_hour: u32,
}

impl Default for Policy {
    /// Safe defaults: nobody may approve until an operator names the approvers.
    fn default() -> Self {
        Self {
            protected: vec![],
            approvers: Members::default(),
            requesters: None,
            suspend_approvals: 1,
            suspend_ttl: Duration::minutes(30),
            suspend_requester_counts: true,
            restore_approvals: 2,
            restore_ttl: Duration::hours(24),
            // Containment stays one click; giving access back needs the approver's passkey.
            suspend_step_up: StepUp::None,
            restore_step_up: StepUp::Passkey,
            auto_approve: vec![],
            suspend_escalation: None,
            restore_escalation: None,
        }
    }
}

/// A policy file error, with the 1-based line it concerns when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    pub line: Option<usize>,
    pub message: String,
}

impl Policy {
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let at = |span: std::ops::Range<usize>, message: String| PolicyError {
            line: Some(line_of(text, span.start)),
            message,
        };
        let mut policy = Policy::default();

        for raw in file.protected {
            let email = Email::parse(raw.get_ref()).map_err(|e| at(raw.span(), e))?;
            policy.protected.push(email);
        }
        policy.approvers = members(file.approvers.unwrap_or_default(), &at)?;
        policy.requesters = file.requesters.map(|r| members(r, &at)).transpose()?;

        let suspend = file.suspend.unwrap_or_default();
        if let Some(n) = suspend.approvals {
            if *n.get_ref() < 1 {
                return Err(at(n.span(), "suspend.approvals must be at least 1".into()));
            }
            policy.suspend_approvals = *n.get_ref();
        }
        if let Some(ttl) = suspend.ttl {
            policy.suspend_ttl = parse_duration(ttl.get_ref()).map_err(|e| at(ttl.span(), e))?;
        }
        if let Some(counts) = suspend.requester_counts {
            policy.suspend_requester_counts = counts;
        }
        if let Some(step_up) = suspend.step_up {
            policy.suspend_step_up =
                StepUp::parse(step_up.get_ref()).map_err(|e| at(step_up.span(), e))?;
        }
        policy.suspend_escalation =
            escalation("suspend", suspend.escalate_after, suspend.escalate_to, &at)?;

        let restore = file.restore.unwrap_or_default();
        if let Some(n) = restore.approvals {
            if *n.get_ref() < 2 {
                return Err(at(
                    n.span(),
                    "restore.approvals must be at least 2: a restore always needs two distinct approvers".into(),
                ));
            }
            policy.restore_approvals = *n.get_ref();
        }
        if let Some(ttl) = restore.ttl {
            policy.restore_ttl = parse_duration(ttl.get_ref()).map_err(|e| at(ttl.span(), e))?;
        }
        policy.restore_escalation =
            escalation("restore", restore.escalate_after, restore.escalate_to, &at)?;
        if let Some(step_up) = restore.step_up {
            policy.restore_step_up =
                StepUp::parse(step_up.get_ref()).map_err(|e| at(step_up.span(), e))?;
        }
        for rule in file.auto_approve {
            let name = rule.name.get_ref().trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(at(
                    rule.name.span(),
                    "auto_approve.name must be letters, digits, '-', '_' or '.'".into(),
                ));
            }
            if policy.auto_approve.iter().any(|r| r.name == name) {
                return Err(at(
                    rule.name.span(),
                    format!("auto_approve rule {name:?} is defined twice"),
                ));
            }
            if *rule.max_per_hour.get_ref() < 1 {
                return Err(at(
                    rule.max_per_hour.span(),
                    "auto_approve.max_per_hour must be at least 1".into(),
                ));
            }
            policy.auto_approve.push(AutoApproveRule {
                name: name.to_owned(),
                integration: rule.integration.trim().to_owned(),
                min_confidence: rule.min_confidence,
                max_per_hour: *rule.max_per_hour.get_ref(),
            });
        }
        Ok(policy)
    }

    /// The auto-approve rule for a proposal by the token named `integration`, if one applies:
    /// never for a restore, never for a protected user.
    pub fn auto_approve_rule(
        &self,
        action: Action,
        target: &Email,
        integration: &str,
        confidence: Option<Confidence>,
    ) -> Option<&AutoApproveRule> {
        if action != Action::Suspend || self.is_protected(target) {
            return None;
        }
        self.auto_approve.iter().find(|r| {
            r.integration == integration
                && r.min_confidence
                    .is_none_or(|least| confidence.is_some_and(|c| c >= least))
        })
    }

    pub fn is_protected(&self, email: &Email) -> bool {
        self.protected.contains(email)
    }

    /// Approvals needed to act on `target` (DESIGN §2 "approvals needed").
    pub fn approvals_required(&self, action: Action, target: &Email) -> u32 {
        match action {
            Action::Suspend if self.is_protected(target) => self.suspend_approvals.max(2),
            Action::Suspend => self.suspend_approvals,
            Action::Restore => self.restore_approvals.max(2),
        }
    }

    /// Whether a Slack requester's own command counts as their approval (DESIGN §2): only for
    /// a suspend, when the policy says so, the requester is an approver now and the target is
    /// not protected. The caller also makes sure the command did not fold into another proposal.
    pub fn requester_counts(
        &self,
        action: Action,
        target: &Email,
        requester_is_approver: bool,
    ) -> bool {
        action == Action::Suspend
            && self.suspend_requester_counts
            && requester_is_approver
            && !self.is_protected(target)
    }

    /// What an approving vote for `action` must prove.
    pub fn step_up(&self, action: Action) -> StepUp {
        match action {
            Action::Suspend => self.suspend_step_up,
            Action::Restore => self.restore_step_up,
        }
    }

    /// Whether any vote needs a passkey (then `PUBLIC_URL` must be set).
    pub fn needs_passkeys(&self) -> bool {
        [Action::Suspend, Action::Restore]
            .iter()
            .any(|a| self.step_up(*a) == StepUp::Passkey)
    }

    /// What an operator should hear about this policy before relying on it.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = vec![];
        if self.restore_step_up == StepUp::None {
            warnings.push(
                "restore.step_up = \"none\": a restore vote rests on the Slack session alone, so two hijacked Slack sessions (or one and a hurried colleague) can give a contained account its access back".into(),
            );
        }
        for rule in self
            .auto_approve
            .iter()
            .filter(|r| r.min_confidence.is_none())
        {
            warnings.push(format!(
                "auto_approve rule {:?} has no min_confidence: every suspension {:?} proposes is approved without a human, up to {} an hour",
                rule.name, rule.integration, rule.max_per_hour
            ));
        }
        warnings
    }

    /// Whom a proposal of `action` is escalated to, and after how long, if at all.
    pub fn escalation(&self, action: Action) -> Option<&Escalation> {
        match action {
            Action::Suspend => self.suspend_escalation.as_ref(),
            Action::Restore => self.restore_escalation.as_ref(),
        }
    }

    pub fn ttl(&self, action: Action) -> Duration {
        match action {
            Action::Suspend => self.suspend_ttl,
            Action::Restore => self.restore_ttl,
        }
    }

    pub fn requesters(&self) -> &Members {
        self.requesters.as_ref().unwrap_or(&self.approvers)
    }
}

/// An action's escalation: both `escalate_after` and `escalate_to`, or neither.
fn escalation(
    action: &str,
    after: Option<Spanned<String>>,
    to: Option<Spanned<Vec<String>>>,
    at: &impl Fn(std::ops::Range<usize>, String) -> PolicyError,
) -> Result<Option<Escalation>, PolicyError> {
    match (after, to) {
        (None, None) => Ok(None),
        (Some(after), Some(to)) => Escalation::parse(after.get_ref(), to.get_ref())
            .map(Some)
            .map_err(|e| at(to.span(), format!("{action}: {e}"))),
        (Some(only), None) => Err(at(
            only.span(),
            format!("{action}.escalate_after needs {action}.escalate_to"),
        )),
        (None, Some(only)) => Err(at(
            only.span(),
            format!("{action}.escalate_to needs {action}.escalate_after"),
        )),
    }
}

fn members(
    raw: MembersFile,
    at: &impl Fn(std::ops::Range<usize>, String) -> PolicyError,
) -> Result<Members, PolicyError> {
    let mut out = Members::default();
    for user in raw.users {
        out.users
            .push(SlackUserId::parse(user.get_ref()).map_err(|e| at(user.span(), e))?);
    }
    for group in raw.groups {
        let id = group.get_ref();
        if !(id.starts_with('S') && id.len() > 1 && id.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(at(
                group.span(),
                format!("{id:?} is not a Slack user group id (S…)"),
            ));
        }
        out.groups.push(id.clone());
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses "90s", "30m", "24h" or "7d".
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like \"30m\" or \"24h\""))?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("{raw:?} is not a duration like \"30m\" or \"24h\"")),
    };
    if n == 0 {
        return Err(format!("{raw:?} must be longer than zero"));
    }
    Ok(d)
}

type Spanned<T> = toml::Spanned<T>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    protected: Vec<Spanned<String>>,
    approvers: Option<MembersFile>,
    requesters: Option<MembersFile>,
    suspend: Option<SuspendFile>,
    restore: Option<RestoreFile>,
    #[serde(default)]
    auto_approve: Vec<AutoApproveFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoApproveFile {
    name: Spanned<String>,
    integration: String,
    #[serde(default)]
    min_confidence: Option<Confidence>,
    max_per_hour: Spanned<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MembersFile {
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SuspendFile {
    approvals: Option<Spanned<u32>>,
    ttl: Option<Spanned<String>>,
    requester_counts: Option<bool>,
    step_up: Option<Spanned<String>>,
    escalate_after: Option<Spanned<String>>,
    escalate_to: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RestoreFile {
    approvals: Option<Spanned<u32>>,
    ttl: Option<Spanned<String>>,
    step_up: Option<Spanned<String>>,
    escalate_after: Option<Spanned<String>>,
    escalate_to: Option<Spanned<Vec<String>>>,
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
