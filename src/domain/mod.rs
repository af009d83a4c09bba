//! The domain: proposals, their state machine and the approval policy. No I/O lives here, so
//! every rule can be tested without a runtime; adapters parse into these types and persist
//! what the domain decides.

mod announcement;
mod decider;
pub mod drift;
mod email;
#[cfg(test)]
pub(crate) mod fixtures;
mod ids;
mod lifecycle;
mod policy;
mod proposal;
mod reason;
mod refusal;
mod schema;

pub use announcement::Announcement;
pub use decider::{Decider, Standing};
pub use email::Email;
pub use ids::{AccountId, OnePasswordUserId, ProposalId, SlackUserId};
pub use lifecycle::{Action, Confidence, Outcome, Status, UserState};
pub use policy::{parse_duration, AutoApproveRule, Members, Policy, PolicyError};
pub use proposal::{
    Approval, Denial, Evidence, Execution, Proposal, Requester, SlackRef, Source, Target, Vote,
};
pub use reason::Reason;
pub use refusal::Refusal;
