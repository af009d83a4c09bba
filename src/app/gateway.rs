//! The Users API gateway's writes: a `:suspend` or `:reactivate` sent by a SOAR's 1Password
//! integration becomes a proposal like any other, and the call waits, bounded, for it to end.
//! A repeated call finds its proposal again (pending: joins it; ended lately: its ending), on
//! any replica, because the ledger is where it looks.

use std::time::Duration;

use chrono::Utc;

use crate::app::intake::{self, IntakeError, NewProposal, UserRef};
use crate::app::state::AppState;
use crate::domain::{Action, OnePasswordUserId, Proposal, Reason, Requester, Source, Status};
use crate::ledger::GatewayClient;

/// The platform a gateway proposal's source names, on its card and in the ledger.
pub const PLATFORM: &str = "1Password Users API gateway";

/// The longest `User-Agent` kept in a proposal's reason.
const USER_AGENT_KEPT: usize = 120;

/// The least time between two reads of one waiting call's proposal: every commit wakes every
/// waiter, and an incident's hundreds of waiting calls must not read once per commit each.
const READ_AT_MOST_EVERY: Duration = Duration::from_millis(25);

/// A gateway write as the adapter read it.
pub struct GatewayWrite<'a> {
    pub client: &'a GatewayClient,
    pub action: Action,
    pub user: OnePasswordUserId,
    /// As the integration sent it (it names the integration and its version).
    pub user_agent: &'a str,
}

/// How the call's proposal stood when the call stopped waiting.
#[derive(Debug, Clone)]
pub enum Ending {
    /// 1Password did it (or the user was already so): answer with the user as it is now.
    Executed(Proposal),
    Denied(Proposal),
    /// Expired, cancelled or superseded: it ended without a decision to act.
    Aborted(Proposal),
    /// Approved, but 1Password refused or could not be reached to the end.
    Failed(Proposal),
    /// Still awaiting humans (or 1Password) when the wait ran out or shutdown began.
    Undecided(Proposal),
}

impl Ending {
    fn of(proposal: Proposal) -> Self {
        match proposal.status {
            Status::Executed => Ending::Executed(proposal),
            Status::Denied => Ending::Denied(proposal),
            Status::Expired | Status::Cancelled | Status::Superseded => Ending::Aborted(proposal),
            Status::Failed => Ending::Failed(proposal),
            Status::Pending | Status::Approved | Status::Executing => Ending::Undecided(proposal),
        }
    }
}

fn is_undecided(status: Status) -> bool {
    matches!(
        status,
        Status::Pending | Status::Approved | Status::Executing
    )
}

/// Proposes `write` (or finds the proposal an earlier identical call made) and waits up to
/// `GATEWAY_WAIT` for it to end.
pub async fn act(state: &AppState, write: GatewayWrite<'_>) -> Result<Ending, IntakeError> {
    let requester = Requester::Integration {
        name: write.client.name.clone(),
        token_id: write.client.id.clone(),
    };
    // Only the newest proposal about the user counts: an ending a later decision overtook (a
    // suspension since restored) is no longer the answer.
    let earlier = state
        .ledger
        .latest_proposal_about(&write.user)
        .await?
        .filter(|(proposal, _)| {
            proposal.action == write.action && proposal.requesters().any(|r| r.same_as(&requester))
        });
    let id = match earlier {
        // Ended lately: the retry of a call that already has its answer.
        Some((proposal, changed))
            if !is_undecided(proposal.status)
                && Utc::now() - changed
                    <= chrono::Duration::from_std(state.timing.gateway_remember)
                        .unwrap_or(chrono::TimeDelta::MAX) =>
        {
            return Ok(Ending::of(proposal));
        }
        // Decided and on its way to 1Password: nothing to add, only to wait.
        Some((proposal, _)) if matches!(proposal.status, Status::Approved | Status::Executing) => {
            proposal.id
        }
        // Pending (the call joins it as evidence) or long over (a new proposal).
        _ => {
            let new = NewProposal {
                action: write.action,
                user: UserRef::Id(write.user.clone()),
                reason: reason(&write),
                source: Source {
                    platform: PLATFORM.to_owned(),
                    rule: Some(write.client.name.clone()),
                    ..Source::default()
                },
                callback_url: None,
            };
            match intake::propose(state, requester, new, None, None).await? {
                intake::Intake::Created(p)
                | intake::Intake::FoldedInto(p)
                | intake::Intake::Replayed(p) => p.id,
            }
        }
    };
    Ok(Ending::of(wait_for_end(state, id).await?))
}

/// What the proposal says about where it came from: the client, its `User-Agent`, the call.
fn reason(write: &GatewayWrite<'_>) -> Reason {
    let agent: String = write
        .user_agent
        .chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_KEPT)
        .collect();
    let verb = match write.action {
        Action::Suspend => "suspend",
        Action::Restore => "reactivate",
    };
    let text = format!(
        "{} asked 1Password to {verb} this user through countersign's Users API gateway (User-Agent: {agent})",
        write.client.name
    );
    Reason::parse(&text).unwrap_or_else(|_| {
        Reason::parse(&format!(
            "{} asked 1Password to {verb} this user through countersign's Users API gateway",
            write.client.name
        ))
        .expect("a client name is short printable text")
    })
}

/// Reads the proposal until it ends, the wait runs out or shutdown begins. No database
/// connection is held between reads; a commit anywhere (or the poll) wakes the next read.
async fn wait_for_end(
    state: &AppState,
    id: crate::domain::ProposalId,
) -> Result<Proposal, IntakeError> {
    let deadline = tokio::time::Instant::now() + state.timing.gateway_wait;
    let mut last_read = None;
    loop {
        if let Some(at) = last_read {
            tokio::time::sleep_until(deadline.min(at + READ_AT_MOST_EVERY)).await;
        }
        let woken = state.wake.notified();
        tokio::pin!(woken);
        // Registered before the read, so a commit between the read and the wait still wakes us.
        woken.as_mut().enable();
        let proposal = state.ledger.proposal(id).await?.ok_or_else(|| {
            IntakeError::Storage(sqlx::Error::Protocol(format!(
                "the proposal {id} is gone from the ledger"
            )))
        })?;
        let now = tokio::time::Instant::now();
        last_read = Some(now);
        if !is_undecided(proposal.status) || now >= deadline || state.stopping.is_cancelled() {
            return Ok(proposal);
        }
        let poll = state.timing.gateway_poll.max(Duration::from_millis(10));
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(poll) => {}
            () = tokio::time::sleep_until(deadline) => {}
            () = state.stopping.cancelled() => {}
        }
    }
}
