//! The domain: proposals, their state machine and the approval policy. No I/O lives here, so
//! every rule can be tested without a runtime; adapters parse into these types and persist
//! what the domain decides.

mod announcement;
pub mod attribution;
pub mod authority;
mod callback;
mod decider;
pub mod drift;
mod email;
pub mod escalation;
#[cfg(test)]
pub(crate) mod fixtures;
mod ids;
pub mod incident;
mod lifecycle;
mod policy;
mod proposal;
mod reason;
mod refusal;
mod schema;
mod text;
mod view;

pub use announcement::Announcement;
pub use callback::CallbackUrl;
pub use decider::{Decider, Standing};
pub use email::Email;
pub use ids::{AccountId, OnePasswordUserId, ProposalId, SlackUserId};
pub use lifecycle::{Action, Confidence, Outcome, Status, UserState};
pub use policy::{parse_duration, AutoApproveRule, Members, Policy, PolicyError, StepUp};
pub use proposal::{
    Approval, Cancel, Denial, Evidence, Execution, Folded, FurtherRequest, Proposal, Requester,
    SlackRef, Source, Target, VendorError, Vote, MAX_EVIDENCE,
};
pub use reason::Reason;
pub use refusal::Refusal;
pub use text::check_free_text;
pub use view::{EvidenceView, ProposalView, RequesterView, Viewer};
