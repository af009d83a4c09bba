pub mod app;
pub mod callback_receiver;
pub mod fake_onepassword;
pub mod fake_slack;
pub mod process;
pub mod slack_signing;
