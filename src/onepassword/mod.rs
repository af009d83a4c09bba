//! The 1Password Users API for Partners (DESIGN §5).

mod client;
mod config;
pub mod events;
mod model;
mod token;
mod wire;

pub use client::OnePassword;
pub use config::{Endpoints, OnePasswordConfig};
pub use model::{grpc, OpError, Refusal, User};
pub use wire::Relayed;
