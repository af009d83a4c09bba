//! countersign: security automation proposes, humans decide in Slack, 1Password executes,
//! and a hash-chained ledger records every step.

pub mod api;
pub mod cli;
pub mod config;
pub mod decisions;
pub mod domain;
pub mod drift;
pub mod ledger;
pub mod metrics;
pub mod onepassword;
pub mod proposals;
pub mod sandbox;
pub mod slack;
pub mod startup;
pub mod state;
pub mod supersession;
pub mod telemetry;
pub mod worker;
