//! A proposal and its status machine (DESIGN §2). Every transition is a method that either
//! changes the proposal or returns a [`Refusal`] and leaves it untouched.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::decider::{Decider, Standing};
use super::lifecycle::{Action, Confidence, Outcome, Status, UserState};
use super::refusal::Refusal;
use super::{Email, OnePasswordUserId, ProposalId, Reason, SlackUserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub id: OnePasswordUserId,
    pub email: Email,
    pub display_name: String,
    pub state: UserState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requester {
    /// An automation token; `token_id` is the token's public id, never its secret.
    Integration { name: String, token_id: String },
    SlackUser {
        slack_user_id: SlackUserId,
        name: String,
    },
}

impl Requester {
    /// How the ledger names this requester (`integration:<name>`, `slack:<id>`).
    pub fn actor(&self) -> String {
        match self {
            Requester::Integration { name, .. } => format!("integration:{name}"),
            Requester::SlackUser { slack_user_id, .. } => format!("slack:{slack_user_id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub platform: String,
    #[serde(default)]
    pub alert_id: Option<String>,
    #[serde(default)]
    pub alert_url: Option<String>,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub confidence: Option<Confidence>,
    #[serde(default)]
    pub severity: Option<String>,
}

/// A further report about the same user and action, folded into a pending proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub source: Source,
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub slack_user_id: SlackUserId,
    pub name: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Denial {
    /// The approver who denied; `None` when countersign itself ended the proposal (a restore
    /// overtaken by a new alert).
    pub slack_user_id: Option<SlackUserId>,
    pub name: String,
    pub reason: Reason,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    pub attempts: u32,
    pub outcome: Option<Outcome>,
    pub last_error: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlackRef {
    pub channel: String,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proposal {
    pub id: ProposalId,
    pub action: Action,
    pub status: Status,
    pub target: Target,
    pub reason: Reason,
    pub requester: Requester,
    pub source: Source,
    pub evidence: Vec<Evidence>,
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub denial: Option<Denial>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub callback_url: Option<String>,
    pub execution: Execution,
    pub slack: Option<SlackRef>,
    /// The policy rule that approved this proposal, when no human did.
    #[serde(default)]
    pub auto_approved_by: Option<String>,
    /// The newer proposal for the same user whose approval ended this one `superseded`.
    #[serde(default)]
    pub superseded_by: Option<ProposalId>,
}

/// What an accepted approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Counted; more approvals are needed.
    Counted { count: u32, required: u32 },
    /// Counted, and the proposal is now approved.
    Approved,
}

impl Proposal {
    /// Half way to expiry, when the approvers get one reminder.
    pub fn reminder_due(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Pending
            && now >= self.created_at + (self.expires_at - self.created_at) / 2
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// Checks that `decider` may approve or deny this proposal now (DESIGN §2 table).
    pub fn check_decider(&self, decider: &Decider, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        if self.is_expired(now) {
            return Err(Refusal::Expired(self.expires_at));
        }
        self.check_person(decider)
    }

    /// Who may act on this proposal at all, pending or not: a colleague of the workspace who
    /// is an approver, with a readable email that is not the target's.
    fn check_person(&self, decider: &Decider) -> Result<(), Refusal> {
        if decider.standing != Standing::Colleague {
            return Err(Refusal::NotAColleague(decider.standing));
        }
        if !decider.is_approver {
            return Err(Refusal::NotAnApprover);
        }
        // Fail closed: without an email we cannot tell whether this is the target.
        let Some(email) = &decider.email else {
            return Err(Refusal::NoEmail);
        };
        if *email == self.target.email {
            return Err(Refusal::IsTarget);
        }
        Ok(())
    }

    pub fn approve(&mut self, decider: &Decider, now: DateTime<Utc>) -> Result<Vote, Refusal> {
        self.check_decider(decider, now)?;
        if self.action == Action::Restore && self.is_requested_by(&decider.slack_user_id) {
            return Err(Refusal::IsRequester);
        }
        if self
            .approvals
            .iter()
            .any(|a| a.slack_user_id == decider.slack_user_id)
        {
            return Err(Refusal::AlreadyApproved);
        }
        self.approvals.push(Approval {
            slack_user_id: decider.slack_user_id.clone(),
            name: decider.name.clone(),
            at: now,
        });
        let count = self.approvals.len() as u32;
        if count >= self.approvals_required {
            self.status = Status::Approved;
            Ok(Vote::Approved)
        } else {
            Ok(Vote::Counted {
                count,
                required: self.approvals_required,
            })
        }
    }

    /// An operator's auto-approve rule approves this proposal; the intake checked the rule
    /// applies and its hourly cap.
    pub fn auto_approve(&mut self, rule: &str) -> Result<(), Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        self.auto_approved_by = Some(rule.to_owned());
        self.status = Status::Approved;
        Ok(())
    }

    /// A denial is a veto: one approver ends the proposal.
    pub fn deny(
        &mut self,
        decider: &Decider,
        reason: Reason,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_decider(decider, now)?;
        self.denial = Some(Denial {
            slack_user_id: Some(decider.slack_user_id.clone()),
            name: decider.name.clone(),
            reason,
            at: now,
        });
        self.status = Status::Denied;
        Ok(())
    }

    /// countersign ends a pending restore itself: a new alert about the same user arrived, and
    /// containment wins over re-granting access (DESIGN §2, "Dedupe").
    pub fn deny_by_system(&mut self, reason: Reason, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        self.denial = Some(Denial {
            slack_user_id: None,
            name: "countersign".into(),
            reason,
            at: now,
        });
        self.status = Status::Denied;
        Ok(())
    }

    /// A newer decision about the same user was approved after this one: this proposal ends
    /// without a call, so an older action can never undo a newer one.
    pub fn supersede(&mut self, newer: ProposalId, now: DateTime<Utc>) -> Result<(), Refusal> {
        if !matches!(
            self.status,
            Status::Approved | Status::Executing | Status::Failed
        ) {
            return Err(Refusal::NotExecutable(self.status));
        }
        self.status = Status::Superseded;
        self.superseded_by = Some(newer);
        self.execution.at = Some(now);
        Ok(())
    }

    /// A further report about the same user and action joins this proposal as evidence; it
    /// changes no approvals, TTL or callback.
    pub fn fold_in(&mut self, evidence: Evidence) -> Result<(), Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        self.evidence.push(evidence);
        Ok(())
    }

    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        if !self.is_expired(now) {
            return Err(Refusal::NotPending(self.status));
        }
        self.status = Status::Expired;
        Ok(())
    }

    pub fn cancel(&mut self, by: &Requester) -> Result<(), Refusal> {
        if !self.same_requester(by) {
            return Err(Refusal::NotRequester);
        }
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        self.status = Status::Cancelled;
        Ok(())
    }

    /// An attempt at the action begins: an approved (or retried) proposal starts executing,
    /// and an executing one (rescheduled after a transient failure, or resumed after a crash)
    /// tries again. Every attempt counts. Returns the attempt's number.
    pub fn begin_attempt(&mut self) -> Result<u32, Refusal> {
        if !matches!(self.status, Status::Approved | Status::Executing) {
            return Err(Refusal::NotExecutable(self.status));
        }
        self.status = Status::Executing;
        self.execution.attempts += 1;
        Ok(self.execution.attempts)
    }

    pub fn finish_execution(&mut self, outcome: Outcome, state: UserState, now: DateTime<Utc>) {
        self.status = Status::Executed;
        self.target.state = state;
        self.execution.outcome = Some(outcome);
        self.execution.last_error = None;
        self.execution.at = Some(now);
    }

    pub fn fail_execution(&mut self, error: String, now: DateTime<Utc>) {
        self.status = Status::Failed;
        self.execution.last_error = Some(error);
        self.execution.at = Some(now);
    }

    /// An approver asks to run a failed execution again; no new approvals are needed.
    pub fn retry(&mut self, decider: &Decider) -> Result<(), Refusal> {
        if self.status != Status::Failed {
            return Err(Refusal::NotFailed(self.status));
        }
        // A retry acts on the user as a decision does: the same identity rules apply.
        self.check_person(decider)?;
        self.status = Status::Approved;
        Ok(())
    }

    pub fn is_requested_by(&self, user: &SlackUserId) -> bool {
        matches!(&self.requester, Requester::SlackUser { slack_user_id, .. } if slack_user_id == user)
    }

    fn same_requester(&self, other: &Requester) -> bool {
        match (&self.requester, other) {
            (
                Requester::Integration { token_id: a, .. },
                Requester::Integration { token_id: b, .. },
            ) => a == b,
            (
                Requester::SlackUser {
                    slack_user_id: a, ..
                },
                Requester::SlackUser {
                    slack_user_id: b, ..
                },
            ) => a == b,
            _ => false,
        }
    }

    /// The event a callback should announce now: the proposal has a callback_url and has just
    /// reached a status automation cares about.
    pub fn callback_event(&self) -> Option<Status> {
        let announced = matches!(
            self.status,
            Status::Executed
                | Status::Failed
                | Status::Denied
                | Status::Expired
                | Status::Cancelled
                | Status::Superseded
        );
        (announced && self.callback_url.is_some()).then_some(self.status)
    }

    /// When the proposal became approved: its last approval, or its creation when a policy
    /// rule approved it.
    pub fn approved_at(&self) -> DateTime<Utc> {
        self.approvals
            .last()
            .map(|a| a.at)
            .unwrap_or(self.created_at)
    }

    /// When this proposal became approved, if it ever was: the time that orders decisions
    /// about one user (DESIGN §2, per-user order).
    pub fn decided_at(&self) -> Option<DateTime<Utc>> {
        matches!(
            self.status,
            Status::Approved
                | Status::Executing
                | Status::Executed
                | Status::Failed
                | Status::Superseded
        )
        .then(|| self.approved_at())
    }

    pub fn approvals_count(&self) -> u32 {
        self.approvals.len() as u32
    }
}

#[cfg(test)]
#[path = "proposal_tests.rs"]
mod tests;
