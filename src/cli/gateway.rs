//! `countersign gateway client`: credentials for a SOAR's 1Password integration pointed at
//! countersign. A client can only *propose* (and read, if allowed); the secret is printed once.

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use crate::ledger::{GatewayPermission, Ledger, NewClientError};

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Clients of the Users API gateway (a SOAR's 1Password integration).
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a client; `{"client_id", "client_secret"}` is printed once, alone on stdout.
    Create {
        /// The integration's name: the requester of its proposals, and what an `auto_approve`
        /// rule's `integration` names.
        #[arg(long)]
        name: String,
        /// list-users, get-user, suspend-users or reactivate-users, as 1Password names an OAuth
        /// application's permissions; repeat for several.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// List clients (never their secrets).
    List,
    /// Revoke a client by id, and every access token it holds.
    Revoke { id: String },
}

pub async fn run(
    ledger: &Ledger,
    GatewayCommand::Client(command): GatewayCommand,
) -> anyhow::Result<i32> {
    match command {
        ClientCommand::Create { name, permissions } => {
            let Some(name) = super::integration_name(&name) else {
                eprintln!("--name must be 1 to 64 letters, digits, '-', '_' or '.'");
                return Ok(2);
            };
            let permissions = match permissions
                .iter()
                .map(|p| GatewayPermission::parse(p.trim()))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(permissions) => permissions,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(2);
                }
            };
            let (client, secret) = match ledger
                .create_gateway_client(name, &permissions, Utc::now())
                .await
            {
                Ok(created) => created,
                Err(NewClientError::NameTaken(_)) => {
                    eprintln!("a live gateway client or API token is already named {name:?}; policy rules name integrations by name, so pick another");
                    return Ok(1);
                }
                Err(NewClientError::Storage(error)) => return Err(error.into()),
            };
            eprintln!(
                "created gateway client {} for {} with {}; store the secret now, it is not shown again",
                client.id,
                client.name,
                permission_list(&client.permissions)
            );
            println!(
                "{}",
                json!({"client_id": client.id, "client_secret": secret})
            );
        }
        ClientCommand::List => {
            for client in ledger.gateway_clients().await? {
                let status = client
                    .revoked_at
                    .as_deref()
                    .map_or_else(|| "active".to_owned(), |at| format!("revoked {at}"));
                println!(
                    "{}\t{}\t{}\t{}\t{status}",
                    client.id,
                    client.name,
                    permission_list(&client.permissions),
                    client.created_at,
                );
            }
        }
        ClientCommand::Revoke { id } => {
            match ledger.revoke_gateway_client(&id, Utc::now()).await? {
                Some(client) => eprintln!("revoked {} ({}) and its tokens", client.id, client.name),
                None => {
                    eprintln!("no active gateway client has the id {id}");
                    return Ok(1);
                }
            }
        }
    }
    Ok(0)
}

fn permission_list(permissions: &[GatewayPermission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
