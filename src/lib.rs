//! countersign: security automation proposes, humans decide in Slack, 1Password executes,
//! and a hash-chained ledger records every step.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod http_server;
pub mod ledger;
pub mod memory;
pub mod metrics;
pub mod onepassword;
pub mod sandbox;
pub mod slack;
pub mod startup;
pub mod telemetry;
pub mod web;
pub mod worker;
