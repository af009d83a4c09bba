#![allow(dead_code)]
pub mod api;
pub mod app;
pub mod authenticator;
pub mod callback_receiver;
pub mod database;
pub mod passkeys;
pub mod process;
pub mod sandbox;
pub mod slack;
pub mod soar;

/// The stand-ins live in the product (the sandbox uses them too); tests name them as before.
pub mod fake_onepassword {
    pub use countersign::sandbox::onepassword::*;
}
pub mod fake_slack {
    pub use countersign::sandbox::slack::*;
}
pub mod slack_signing {
    pub use countersign::sandbox::signing::*;
}
