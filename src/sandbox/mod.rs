//! The sandbox: countersign with local stand-ins for the Slack Web API and the 1Password Users
//! API, for a newcomer to try and for the test suite. The stand-ins are real HTTP servers on
//! 127.0.0.1 that speak the wire formats of DESIGN §4–5. Only `countersign sandbox` (and the
//! tests) start them; `serve` never does.

pub mod onepassword;
mod run;
pub mod signing;
pub mod slack;

pub use run::{run, CHANNEL, TEAM};
