//! The command line: `serve` (default), `migrate`, `token create|list|revoke`, `ledger verify`,
//! `passkey`, `gateway client create|list|revoke`.

mod gateway;
mod passkey;

pub use gateway::GatewayCommand;
pub use passkey::PasskeyCommand;

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::{redacted_url, ServeArgs, Settings};
use crate::domain::ProposalId;
use crate::ledger::{EventQuery, ExportFormat, Ledger, Scope};
use crate::startup::Application;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "Human approval between security automation and a user's access"
)]
pub struct Cli {
    /// SQLite database of the ledger.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://countersign.db",
        global = true
    )]
    pub database_url: String,
    /// Log format: pretty or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", global = true)]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Shows `DATABASE_URL` without its password.
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("database_url", &redacted_url(&self.database_url))
            .field("log_format", &self.log_format)
            .field("command", &self.command)
            .field("serve", &self.serve)
            .finish()
    }
}

// Parsed once at start; the size of the serve variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: HTTP API, Slack endpoints and workers (the default).
    Serve(ServeArgs),
    /// Try countersign locally: local stand-ins for Slack and 1Password, and a page at /sandbox.
    Sandbox {
        /// Loopback address to serve the bot and the page on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// Reach the bot over Socket Mode (its stand-in's WebSockets), as with SLACK_APP_TOKEN:
        /// no HTTP route of Slack's is used.
        #[arg(long)]
        socket_mode: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage automation API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Verify or export the ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Check a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Enroll, list and revoke approvers' passkeys.
    #[command(subcommand)]
    Passkey(PasskeyCommand),
    /// Credentials for a SOAR's 1Password integration pointed at countersign (the Users API
    /// gateway).
    #[command(subcommand)]
    Gateway(GatewayCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; the secret is printed once, alone on stdout.
    Create {
        /// The integration's name (recorded as the requester, e.g. tines).
        #[arg(long)]
        name: String,
        /// propose:suspend, propose:restore, read or audit:read; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Recompute every event's hash and report the first broken link.
    Verify {
        /// A checkpoint `<seq>:<hash>` copied from the audit channel; the chain must still hold it.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<String>,
    },
    /// Write the history for auditors to stdout.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events of this proposal.
        #[arg(long)]
        proposal: Option<String>,
    },
    /// Copy every event (with its seq and hash) and the current state into a new, empty
    /// ledger, then verify the copy: how a SQLite ledger moves to PostgreSQL. Stop
    /// countersign on the source first.
    Copy {
        /// The ledger to copy, e.g. sqlite://countersign.db.
        #[arg(long)]
        from: String,
        /// The new ledger, e.g. postgres://countersign@db/countersign; refused unless empty.
        #[arg(long)]
        to: String,
    },
}

/// Shows `ledger copy`'s URLs without their passwords.
impl std::fmt::Debug for LedgerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Verify { checkpoints } => f
                .debug_struct("Verify")
                .field("checkpoints", checkpoints)
                .finish(),
            Self::Export {
                format,
                since,
                proposal,
            } => f
                .debug_struct("Export")
                .field("format", format)
                .field("since", since)
                .field("proposal", proposal)
                .finish(),
            Self::Copy { from, to } => f
                .debug_struct("Copy")
                .field("from", &redacted_url(from))
                .field("to", &redacted_url(to))
                .finish(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file without starting; errors name the line.
    Check { file: String },
}

/// Runs the command; the exit code is 0 on success, 1 on failure. An error that quotes
/// `DATABASE_URL` (a driver's, say) quotes it without its password.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let database_url = cli.database_url.clone();
    run_command(cli).await.map_err(|error| {
        let message = format!("{error:#}");
        let shown = without_passwords(&message, &[&database_url]);
        if shown == message {
            error
        } else {
            anyhow::anyhow!(shown)
        }
    })
}

/// `message` with each of `urls` it quotes shown without its password.
fn without_passwords(message: &str, urls: &[&str]) -> String {
    urls.iter()
        .filter(|url| !url.is_empty())
        .fold(message.to_owned(), |shown, url| {
            shown.replace(url, &redacted_url(url))
        })
}

async fn run_command(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        None => serve(&cli.database_url, &cli.serve).await,
        Some(Command::Serve(args)) => serve(&cli.database_url, &args).await,
        Some(Command::Sandbox { bind, socket_mode }) => {
            crate::sandbox::run(bind, socket_mode, shutdown_signal()).await?;
            Ok(0)
        }
        Some(Command::Migrate) => {
            open(&cli.database_url).await?;
            eprintln!("migrations applied to {}", redacted_url(&cli.database_url));
            Ok(0)
        }
        Some(Command::Token(command)) => token(&cli.database_url, command).await,
        Some(Command::Ledger(LedgerCommand::Verify { checkpoints })) => {
            verify(&cli.database_url, &checkpoints).await
        }
        Some(Command::Ledger(LedgerCommand::Export {
            format,
            since,
            proposal,
        })) => export(&cli.database_url, format, since, proposal).await,
        Some(Command::Ledger(LedgerCommand::Copy { from, to })) => copy(&from, &to).await,
        Some(Command::Policy(PolicyCommand::Check { file })) => policy_check(&file),
        Some(Command::Passkey(command)) => {
            passkey::run(&open(&cli.database_url).await?, command).await
        }
        Some(Command::Gateway(command)) => {
            gateway::run(&open(&cli.database_url).await?, command).await
        }
    }
}

async fn open(database_url: &str) -> anyhow::Result<Ledger> {
    let ledger = Ledger::connect(database_url).await?;
    ledger.migrate().await?;
    Ok(ledger)
}

async fn serve(database_url: &str, args: &ServeArgs) -> anyhow::Result<i32> {
    crate::memory::tune_for_server();
    let settings = match Settings::load(database_url, args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("countersign cannot start: {error}");
            return Ok(2);
        }
    };
    let app = Application::build(settings).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(0)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}

async fn token(database_url: &str, command: TokenCommand) -> anyhow::Result<i32> {
    let ledger = open(database_url).await?;
    match command {
        TokenCommand::Create { name, scopes } => {
            let Some(name) = integration_name(&name) else {
                eprintln!("--name must be 1 to 64 letters, digits, '-', '_' or '.'");
                return Ok(2);
            };
            let scopes = match scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(scopes) => scopes,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(2);
                }
            };
            let (token, secret) = ledger.create_token(name, &scopes, Utc::now()).await?;
            eprintln!(
                "created token {} for {} with scopes {}; store it now, it is not shown again",
                token.id,
                token.name,
                scope_list(&token.scopes)
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            for token in ledger.tokens().await? {
                let status = token
                    .revoked_at
                    .as_deref()
                    .map(|at| format!("revoked {at}"))
                    .unwrap_or_else(|| "active".into());
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    token.id,
                    token.name,
                    scope_list(&token.scopes),
                    token.created_at,
                    status
                );
            }
        }
        TokenCommand::Revoke { id } => match ledger.revoke_token(&id, Utc::now()).await? {
            Some(token) => eprintln!("revoked {} ({})", token.id, token.name),
            None => {
                eprintln!("no active token has the id {id}");
                return Ok(1);
            }
        },
    }
    Ok(0)
}

/// An integration's name as policy rules and the ledger name it: 1 to 64 letters, digits,
/// '-', '_' or '.'; `None` otherwise.
fn integration_name(raw: &str) -> Option<&str> {
    let name = raw.trim();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then_some(name)
}

fn scope_list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_checkpoint(raw: &str) -> Option<(i64, String)> {
    let (seq, hash) = raw.trim().split_once(':')?;
    let hash = hash.trim().to_ascii_lowercase();
    let shaped = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    Some((seq.trim().parse().ok().filter(|s| *s > 0)?, hash)).filter(|_| shaped)
}

async fn verify(database_url: &str, checkpoints: &[String]) -> anyhow::Result<i32> {
    let mut parsed = vec![];
    for raw in checkpoints {
        match parse_checkpoint(raw) {
            Some(checkpoint) => parsed.push(checkpoint),
            None => {
                eprintln!("--checkpoint {raw:?} is not <seq>:<64 hex characters>");
                return Ok(2);
            }
        }
    }
    let ledger = Ledger::open_read_only(database_url).await?;
    match ledger.verify(&parsed).await? {
        Ok(head) => {
            println!(
                "ledger ok: {} events verified; head seq {} hash {}",
                head.events, head.seq, head.hash
            );
            Ok(0)
        }
        Err(broken) => {
            println!(
                "ledger BROKEN at seq {} ({}): {}",
                broken.seq,
                broken.kind.as_str(),
                broken.why
            );
            Ok(1)
        }
    }
}

async fn copy(from: &str, to: &str) -> anyhow::Result<i32> {
    // The URLs may carry a password: the messages name engines, never URLs.
    match crate::ledger::copy(from, to).await {
        Ok(copied) => {
            let rows: Vec<String> = copied
                .rows
                .iter()
                .map(|(table, n)| format!("{table} {n}"))
                .collect();
            println!(
                "ledger copied and verified: {} events; head seq {} hash {}; rows: {}",
                copied.events,
                copied.head_seq,
                copied.head_hash,
                rows.join(", ")
            );
            Ok(0)
        }
        Err(error) => {
            let error = without_passwords(&error.to_string(), &[from, to]);
            println!("ledger copy refused: {error}");
            Ok(1)
        }
    }
}

async fn export(
    database_url: &str,
    format: ExportFormat,
    since: Option<String>,
    proposal: Option<String>,
) -> anyhow::Result<i32> {
    let since = match since
        .map(|s| chrono::DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)))
    {
        Some(Err(_)) => {
            eprintln!("--since must be an RFC 3339 time such as 2026-11-25T00:00:00Z");
            return Ok(2);
        }
        other => other.transpose().expect("errors handled above"),
    };
    let proposal_id = match proposal.map(|p| ProposalId::parse(&p)) {
        Some(Err(error)) => {
            eprintln!("--proposal: {error}");
            return Ok(2);
        }
        other => other.transpose().expect("errors handled above"),
    };
    let ledger = Ledger::open_read_only(database_url).await?;
    let query = EventQuery {
        since,
        proposal_id,
        ..EventQuery::default()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = crate::ledger::export(&ledger, format, query, &mut out).await?;
    eprintln!("exported {written} events");
    Ok(0)
}

fn policy_check(file: &str) -> anyhow::Result<i32> {
    match crate::config::load_policy(file) {
        Ok(policy) => {
            println!(
                "{file}: ok ({} approver users, {} approver groups)",
                policy.approvers.users.len(),
                policy.approvers.groups.len()
            );
            for warning in policy.warnings() {
                println!("warning: {warning}");
            }
            Ok(0)
        }
        Err(error) => {
            println!("{error}");
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_never_shows_a_database_password_in_debug() {
        for args in [
            vec![
                "countersign",
                "--database-url",
                "postgres://countersign:db-password-1@db/countersign",
                "migrate",
            ],
            vec![
                "countersign",
                "ledger",
                "copy",
                "--from",
                "sqlite://countersign.db",
                "--to",
                "postgres://countersign:db-password-1@db/countersign",
            ],
        ] {
            let shown = format!("{:?}", Cli::parse_from(&args));

            assert!(!shown.contains("db-password-1"), "{shown}");
            assert!(shown.contains("countersign:[redacted]@db"), "{shown}");
        }
    }
}
