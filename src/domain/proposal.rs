//! A proposal and its status machine (DESIGN §2). Every transition is a method that either
//! changes the proposal or returns a [`Refusal`] and leaves it untouched.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::authority::{self, Act, Case, Proof, Since};
use super::callback::CallbackUrl;
use super::decider::Decider;
use super::lifecycle::{Action, Confidence, Outcome, Status, UserState};
use super::policy::Policy;
use super::refusal::Refusal;
use super::{Email, OnePasswordUserId, ProposalId, Reason, SlackUserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Target {
    pub id: OnePasswordUserId,
    pub email: Email,
    pub display_name: String,
    pub state: UserState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Whether two requesters are the same asker: the same token, or the same Slack user.
    pub fn same_as(&self, other: &Requester) -> bool {
        match (self, other) {
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

    pub fn is_slack_user(&self, user: &SlackUserId) -> bool {
        matches!(self, Requester::SlackUser { slack_user_id, .. } if slack_user_id == user)
    }

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub source: Source,
    pub reason: Reason,
    pub at: DateTime<Utc>,
    /// Who reported it (absent in evidence recorded before requesters were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Requester>,
}

/// Someone else who asked for the same action while it was pending: a requester too, with
/// their own callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FurtherRequest {
    pub requester: Requester,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<CallbackUrl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub slack_user_id: SlackUserId,
    pub name: String,
    pub at: DateTime<Utc>,
    /// What the vote proved beyond the Slack session.
    #[serde(default)]
    pub proof: Proof,
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
    /// 1Password's own answer when it refused the last attempt, as it gave it: what the Users
    /// API gateway hands back to the integration that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_with: Option<VendorError>,
}

/// An error as 1Password sent it: HTTP status, the gRPC status of its body, its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VendorError {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlackRef {
    pub channel: String,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: ProposalId,
    pub action: Action,
    pub status: Status,
    pub target: Target,
    pub reason: Reason,
    /// Who asked first.
    pub requester: Requester,
    /// Everyone else who asked for the same action while it was pending (a `/restore` or a
    /// report folded in): each is a requester too, so none of them counts as an approver
    /// where a requester may not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_requested_by: Vec<FurtherRequest>,
    /// Requesters (by [`Requester::actor`]) who withdrew their request while others still
    /// asked; they stay requesters for who may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withdrawn: Vec<String>,
    pub source: Source,
    pub evidence: Vec<Evidence>,
    /// Reports beyond [`MAX_EVIDENCE`], counted but not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evidence_not_kept: u32,
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub denial: Option<Denial>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub callback_url: Option<CallbackUrl>,
    pub execution: Execution,
    pub slack: Option<SlackRef>,
    /// The policy rule that approved this proposal, when no human did.
    #[serde(default)]
    pub auto_approved_by: Option<String>,
    /// The newer proposal for the same user whose approval ended this one `superseded`.
    #[serde(default)]
    pub superseded_by: Option<ProposalId>,
    /// The incident card this proposal is a row of, when it arrived in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<super::incident::Seat>,
}

/// The evidence a proposal keeps; later reports are counted, not stored, so one caller cannot
/// grow a proposal without bound.
pub const MAX_EVIDENCE: usize = 100;

/// What became of a further report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// Kept as evidence.
    Added,
    /// It repeats an alert the proposal already holds: nothing new to keep.
    Repeated,
    /// The evidence kept is full: counted in `evidence_not_kept`.
    Counted,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a requester's cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Nobody else asked: the proposal ended.
    Cancelled,
    /// Others still ask: only this request was taken back.
    Withdrawn,
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

    /// May `decider` take `act` on this proposal now? [`authority::may`] decides, for every
    /// path that acts on a proposal.
    pub fn may(
        &self,
        decider: &Decider,
        act: Act,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let case = Case {
            action: self.action,
            status: self.status,
            expires_at: self.expires_at,
            target_email: &self.target.email,
            target_state: self.target.state,
            approved_at: self.approved_at(),
            asked: self.is_requested_by(&decider.slack_user_id),
            approved: self
                .approvals
                .iter()
                .any(|a| a.slack_user_id == decider.slack_user_id),
        };
        authority::may(decider, act, &case, policy, now)
    }

    /// `decider` approves, if [`authority::may`] lets them.
    pub fn approve(
        &mut self,
        decider: &Decider,
        proof: Proof,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Vote, Refusal> {
        self.may(decider, Act::Approve(proof), policy, now)?;
        self.approvals.push(Approval {
            slack_user_id: decider.slack_user_id.clone(),
            name: decider.name.clone(),
            at: now,
            proof,
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
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.may(decider, Act::Deny, policy, now)?;
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

    /// A further report about the same user and action: its author becomes one of this
    /// proposal's requesters, with their own callback (a requester who withdrew and reports
    /// again asks again), and the report joins as evidence unless it repeats an alert the
    /// proposal holds or the evidence kept is full. It changes no approvals or TTL.
    pub fn fold_in(
        &mut self,
        evidence: Evidence,
        callback_url: Option<CallbackUrl>,
    ) -> Result<Folded, Refusal> {
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        if let Some(by) = &evidence.by {
            self.join(by, callback_url);
        }
        if self.holds_alert(&evidence.source) {
            return Ok(Folded::Repeated);
        }
        if self.evidence.len() >= MAX_EVIDENCE {
            self.evidence_not_kept = self.evidence_not_kept.saturating_add(1);
            return Ok(Folded::Counted);
        }
        self.evidence.push(evidence);
        Ok(Folded::Added)
    }

    fn join(&mut self, by: &Requester, callback_url: Option<CallbackUrl>) {
        self.withdrawn.retain(|actor| *actor != by.actor());
        let slot = if self.requester.same_as(by) {
            Some(&mut self.callback_url)
        } else {
            self.also_requested_by
                .iter_mut()
                .find(|f| f.requester.same_as(by))
                .map(|f| &mut f.callback_url)
        };
        match slot {
            // A requester's first callback is kept; a later one does not replace it.
            Some(slot) => {
                if slot.is_none() {
                    *slot = callback_url;
                }
            }
            None => self.also_requested_by.push(FurtherRequest {
                requester: by.clone(),
                callback_url,
            }),
        }
    }

    /// Whether a report with this source repeats an alert the proposal already holds.
    fn holds_alert(&self, source: &Source) -> bool {
        let Some(alert) = &source.alert_id else {
            return false;
        };
        std::iter::once(&self.source)
            .chain(self.evidence.iter().map(|e| &e.source))
            .any(|held| held.alert_id.as_ref() == Some(alert) && held.platform == source.platform)
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

    /// A requester takes their request back: the proposal ends `cancelled` when nobody else
    /// still asks for it; otherwise only their request is withdrawn and the proposal waits.
    pub fn cancel(&mut self, by: &Requester) -> Result<Cancel, Refusal> {
        if !self.live_requesters().any(|r| r.same_as(by)) {
            return Err(Refusal::NotRequester);
        }
        if self.status != Status::Pending {
            return Err(Refusal::NotPending(self.status));
        }
        if self.live_requesters().any(|r| !r.same_as(by)) {
            self.withdrawn.push(by.actor());
            return Ok(Cancel::Withdrawn);
        }
        self.status = Status::Cancelled;
        Ok(Cancel::Cancelled)
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

    pub fn fail_execution(
        &mut self,
        error: String,
        refused_with: Option<VendorError>,
        now: DateTime<Utc>,
    ) {
        self.status = Status::Failed;
        self.execution.last_error = Some(error);
        self.execution.refused_with = refused_with;
        self.execution.at = Some(now);
    }

    /// An approver asks to run a failed execution again; no new approvals are needed, but the
    /// approval must still stand: the user unchanged since, and younger than the action's TTL.
    pub fn retry(
        &mut self,
        decider: &Decider,
        since: Since,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.may(decider, Act::Retry(since), policy, now)?;
        self.status = Status::Approved;
        Ok(())
    }

    /// Everyone who asked for this proposal: the first requester, then those folded in.
    pub fn requesters(&self) -> impl Iterator<Item = &Requester> {
        std::iter::once(&self.requester).chain(self.also_requested_by.iter().map(|f| &f.requester))
    }

    /// The requesters who still ask for it.
    pub fn live_requesters(&self) -> impl Iterator<Item = &Requester> {
        self.requesters()
            .filter(|r| !self.withdrawn.contains(&r.actor()))
    }

    /// Where the outcome goes: each requester who still asks and gave a callback, with the
    /// token that gave it.
    pub fn callbacks(&self) -> Vec<(&Requester, &CallbackUrl)> {
        let first = self.callback_url.as_ref().map(|url| (&self.requester, url));
        let further = self
            .also_requested_by
            .iter()
            .filter_map(|f| f.callback_url.as_ref().map(|url| (&f.requester, url)));
        first
            .into_iter()
            .chain(further)
            .filter(|(r, _)| !self.withdrawn.contains(&r.actor()))
            .collect()
    }

    /// Whether this Slack user asked for this proposal, first or folded in.
    pub fn is_requested_by(&self, user: &SlackUserId) -> bool {
        self.requesters().any(|r| r.is_slack_user(user))
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
        (announced && !self.callbacks().is_empty()).then_some(self.status)
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
