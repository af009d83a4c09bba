//! The 1Password Users API, answered by countersign (the "Users API gateway"): a SOAR's own
//! 1Password integration, pointed at countersign with countersign-issued credentials, lists
//! and reads users live from 1Password and *proposes* suspensions and reactivations, which
//! humans decide in Slack before countersign's own 1Password credentials act.
//!
//! The wire is 1Password's, so an integration cannot tell the difference until a human says
//! no: the OAuth endpoints (`oauth`), the users endpoints (`users`), the error bodies and the
//! `User-Agent` rule (`wire`), and who is calling with what permission (`caller`). The
//! decisions themselves are `app::gateway`'s.

mod caller;
pub mod oauth;
pub mod users;
mod wire;
