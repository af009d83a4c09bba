//! Slack: the approval card, signed requests from Slack, and the Web API calls we make.

mod alert_link;
pub mod announce;
mod approve_all;
pub mod card;
mod clicker;
mod client;
mod command;
pub mod command_tasks;
pub mod commands;
mod directory;
pub mod drift;
pub mod escalation;
pub mod events;
pub mod home;
pub mod home_tab;
mod inbound;
pub mod incident_card;
pub mod interactions;
pub mod modal;
mod mrkdwn;
mod payload;
mod propose_again;
mod reply;
pub mod signature;
pub mod socket;

pub use client::{SlackError, SlackPerson, SlackWeb};
pub use directory::Directory;
