//! Application services: what the adapters in (`api/`, `slack/` handlers) call, and what the
//! workers resume. Each service reads the ledger, asks the domain what the transition is, and
//! commits the state, its events and its jobs in one ledger transaction. Services emit facts
//! (`domain::Announcement`, ledger events, outbox jobs); the adapters word them.
//!
//! `AppState` is the shared state every handler and worker holds: the ledger, the policy, the
//! vendor clients and the run-time limits and health the workers keep.

pub mod attribution;
pub mod ceremonies;
pub mod decisions;
pub mod drift_sweep;
pub mod enrollment;
pub mod escalation;
pub mod gateway;
pub mod home;
pub mod incidents;
pub mod intake;
pub mod lane_health;
pub mod op_concurrency;
pub mod relying_party;
pub mod state;
pub mod step_up;
pub mod supersession;

pub use lane_health::LaneHealth;
pub use op_concurrency::Concurrency;
pub use state::AppState;
