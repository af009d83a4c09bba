//! The 1Password Users API for Partners (DESIGN §5).

mod client;
mod model;

pub use client::{OnePassword, OnePasswordConfig};
pub use model::{OpError, User};
