//! An approver's Home: the proposals they can decide now — by the same rules as a click (an
//! approver, not their own account, not their own request, not already counted) — newest
//! first, then their recent requests and decisions. Facts only; `slack::home` words them.

use chrono::Utc;

use crate::app::state::AppState;
use crate::domain::authority::{Act, Proof};
use crate::domain::{Decider, Proposal, Status};
use crate::ledger::ProposalQuery;

/// How many proposals a Home lists at most, in each part (Slack allows 100 blocks a view).
pub const SHOWN: usize = 20;
/// How far back the ledger is read for pending proposals and recent history.
const READ: u32 = 500;

/// What one person's Home shows.
#[derive(Debug, Clone, Default)]
pub struct Home {
    pub approver: bool,
    /// Proposals they may decide now, newest first (at most [`SHOWN`]).
    pub decidable: Vec<Proposal>,
    /// Decidable proposals beyond those shown.
    pub more: usize,
    /// Proposals they asked for or decided, newest first (at most [`SHOWN`]).
    pub recent: Vec<Proposal>,
}

pub async fn of(state: &AppState, decider: &Decider) -> Result<Home, sqlx::Error> {
    let now = Utc::now();
    let pending = state
        .ledger
        .proposals(&ProposalQuery {
            status: Some(Status::Pending),
            limit: READ,
            ..ProposalQuery::default()
        })
        .await?;
    // A passkey satisfies any step-up: what is left are the rules about the person.
    let decidable: Vec<Proposal> = pending
        .into_iter()
        .filter(|p| {
            p.may(decider, Act::Approve(Proof::Passkey), &state.policy, now)
                .is_ok()
        })
        .collect();
    let more = decidable.len().saturating_sub(SHOWN);
    let user = &decider.slack_user_id;
    let recent = state
        .ledger
        .proposals(&ProposalQuery {
            limit: READ,
            ..ProposalQuery::default()
        })
        .await?
        .into_iter()
        .filter(|p| {
            p.is_requested_by(user)
                || p.approvals.iter().any(|a| &a.slack_user_id == user)
                || p.denial
                    .as_ref()
                    .is_some_and(|d| d.slack_user_id.as_ref() == Some(user))
        })
        .take(SHOWN)
        .collect();
    Ok(Home {
        approver: decider.is_approver,
        decidable: decidable.into_iter().take(SHOWN).collect(),
        more,
        recent,
    })
}
