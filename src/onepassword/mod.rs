//! The 1Password Users API for Partners (DESIGN §5).

mod client;
mod model;
mod token;

pub use client::{Endpoints, OnePassword, OnePasswordConfig};
pub use model::{OpError, Refusal, User};
