//! `countersign passkey`: enrollment is rooted outside Slack, at the host. An operator invites
//! a Slack user (a one-time link, alone on stdout), lists passkeys and revokes one.

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use crate::app::enrollment;
use crate::app::relying_party::Passkeys;
use crate::domain::SlackUserId;
use crate::ledger::{EventKind, Ledger};

#[derive(Debug, Subcommand)]
pub enum PasskeyCommand {
    /// Print a one-time enrollment link for a Slack user (valid 15 minutes), alone on stdout.
    Invite {
        /// The Slack member id (U…) the passkey will belong to.
        slack_user_id: String,
        /// Where approvers' browsers reach countersign.
        #[arg(long, env = "PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// List passkeys, revoked ones included.
    List,
    /// Revoke a passkey by its credential id: it confirms no vote any more.
    Revoke { id: String },
}

pub async fn run(ledger: &Ledger, command: PasskeyCommand) -> anyhow::Result<i32> {
    match command {
        PasskeyCommand::Invite {
            slack_user_id,
            public_url,
        } => {
            let Some(public_url) = public_url.filter(|u| !u.trim().is_empty()) else {
                eprintln!("PUBLIC_URL is unset: set it to the origin approvers' browsers use to reach countersign");
                return Ok(2);
            };
            let url = url::Url::parse(public_url.trim())
                .map_err(|_| anyhow::anyhow!("PUBLIC_URL {public_url:?} is not a URL"))?;
            let passkeys = Passkeys::new(&url).map_err(anyhow::Error::msg)?;
            let user = SlackUserId::parse(&slack_user_id)
                .map_err(|e| anyhow::anyhow!("{slack_user_id:?}: {e}"))?;
            let link = enrollment::invite(ledger, &passkeys, &user, Utc::now()).await?;
            eprintln!(
                "a one-time link enrolling Slack user {user}'s passkey, valid {} minutes:",
                enrollment::ENROLL_LINK_FOR.num_minutes()
            );
            println!("{link}");
            Ok(0)
        }
        PasskeyCommand::List => {
            for passkey in ledger.passkeys().await? {
                let state = passkey
                    .revoked_at
                    .map_or("live".to_owned(), |at| format!("revoked {at}"));
                println!(
                    "{}\t{}\t{}\t{state}",
                    passkey.id, passkey.slack_user_id, passkey.created_at
                );
            }
            Ok(0)
        }
        PasskeyCommand::Revoke { id } => {
            let now = Utc::now();
            let mut tx = ledger.begin().await?;
            let Some(revoked) = tx.revoke_passkey(&id, now).await? else {
                eprintln!("no live passkey has the id {id:?}");
                return Ok(1);
            };
            let payload =
                json!({"credential_id": revoked.id, "slack_user_id": revoked.slack_user_id});
            tx.append(None, EventKind::PasskeyRevoked, "cli", payload, now)
                .await?;
            tx.commit().await?;
            eprintln!(
                "revoked passkey {id} of Slack user {}",
                revoked.slack_user_id
            );
            Ok(0)
        }
    }
}
