//! `POST /slack/commands`: `/suspend`, `/restore` and `/approvals`. Slack wants an answer
//! within three seconds, so a proposal is acknowledged at once and made in the background
//! (1Password lookup, card), and the caller is told through `response_url` where the card is.

use crate::app::enrollment;
use crate::app::step_up::Offer;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::card;
use super::command::{self, Command, Listing};
use super::inbound::{refusal, wrong_team};
use super::mrkdwn::escape;
use super::signature;
use crate::app::intake::{self, Intake, IntakeError, NewProposal, UserRef};
use crate::app::state::AppState;
use crate::domain::{Action, Email, Proposal, Reason, Requester, SlackUserId, Source, Status};
use crate::ledger::ProposalQuery;

#[derive(Debug, Deserialize)]
struct SlashCommand {
    #[serde(default)]
    team_id: Option<String>,
    user_id: String,
    command: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    response_url: Option<String>,
}

fn ephemeral(text: impl Into<String>) -> Response {
    Json(json!({"response_type": "ephemeral", "text": text.into()})).into_response()
}

/// Slack's response URLs live on hooks.slack.com; a stand-in's live beside its Web API. Any
/// other address is not posted to, whatever the (signed) request says.
fn trusted_response_url(url: &str, api_url: &str) -> bool {
    let origin = |u: &url::Url| {
        (
            u.scheme().to_owned(),
            u.host_str().map(str::to_owned),
            u.port_or_known_default(),
        )
    };
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let slack_hooks = url.scheme() == "https" && url.host_str() == Some("hooks.slack.com");
    slack_hooks || url::Url::parse(api_url).is_ok_and(|api| origin(&api) == origin(&url))
}

/// A link to a message that Slack resolves in any workspace.
pub fn message_link(channel: &str, ts: &str) -> String {
    format!(
        "https://slack.com/archives/{channel}/p{}",
        ts.replace('.', "")
    )
}

/// Slack's slash command request URL: `/suspend`, `/restore`, `/approvals`, signed by Slack.
#[utoipa::path(
    post, path = "/slack/commands", tag = "slack",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Slack's slash command form"),
    responses((status = 200, description = "An ephemeral answer (a request delivered again is answered, and does nothing)"), (status = 401, description = "Bad, stale or missing Slack signature"), (status = 503, description = "The ledger could not record the request's signature; nothing was done"))
)]
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refusal(&state, &headers, &body) {
        return refused;
    }
    if let Some(answer) = signature::single_use(&state.ledger, &headers, || {
        ephemeral("countersign already received this exact command (Slack delivered it again); it was handled once, and nothing more was done.")
    })
    .await
    {
        return answer;
    }
    answer(&state, &body).await
}

/// A slash command's form (over HTTP, or rebuilt from a Socket Mode envelope), once its
/// transport vouched for it and saw it once: the answer Slack gets.
pub async fn answer(state: &AppState, form: &[u8]) -> Response {
    let Ok(slash) = serde_urlencoded::from_bytes::<SlashCommand>(form) else {
        return (StatusCode::BAD_REQUEST, "expected a slash command form").into_response();
    };
    if wrong_team(state, slash.team_id.as_deref()) {
        tracing::warn!(
            team = slash.team_id.as_deref(),
            "refused a slash command from another workspace"
        );
        return (
            StatusCode::UNAUTHORIZED,
            "this app serves another Slack workspace",
        )
            .into_response();
    }
    let Ok(user) = SlackUserId::parse(&slash.user_id) else {
        return ephemeral("Slack sent an unknown user id; nothing was done.");
    };
    match command::parse(&slash.command, &slash.text) {
        Err(error) => ephemeral(error.0),
        Ok(Command::Help(usage)) => ephemeral(usage),
        Ok(Command::Approvals(listing)) => approvals(state, &user, listing).await,
        Ok(Command::AddPasskey) => ephemeral(match enrollment::offer_add(state, &user).await {
            Ok(Offer::Link(url)) => format!(
                ":key: <{url}|Add a passkey>: you confirm with a passkey you already have, then register the new one (this link is yours alone, for 15 minutes)."
            ),
            Ok(Offer::NoPasskey) => format!(
                "You have no passkey yet. Ask an operator to run `countersign passkey invite {user}` and open the link it prints."
            ),
            Err(error) => error.to_string(),
        }),
        Ok(Command::Propose {
            action,
            email,
            reason,
        }) => {
            propose(
                state,
                user,
                action,
                email,
                reason,
                slash.command,
                slash.response_url,
            )
            .await
        }
    }
}

/// Membership of the policy's requesters or approvers, failing closed when Slack cannot say.
async fn is_member(
    state: &AppState,
    members: &crate::domain::Members,
    user: &SlackUserId,
) -> Result<bool, Response> {
    state.directory.is_member(members, user).await.map_err(|error| {
        tracing::warn!(%error, %user, "could not read group membership");
        ephemeral("countersign could not check your permissions with Slack, so it refused (fail closed). Try again.")
    })
}

async fn propose(
    state: &AppState,
    user: SlackUserId,
    action: Action,
    email: Email,
    reason: Reason,
    command: String,
    response_url: Option<String>,
) -> Response {
    match is_member(state, state.policy.requesters(), &user).await {
        Ok(true) => {}
        Ok(false) => {
            return ephemeral(format!(
                "You are not allowed to request a {}; nothing was recorded.",
                action.as_str()
            ))
        }
        Err(refused) => return refused,
    }
    let acknowledged = format!(
        "Looking up {} in 1Password; the {} proposal will appear in <#{}>.",
        escape(email.as_str()),
        action.as_str(),
        state.slack_settings.channel
    );
    let response_url =
        response_url.filter(|url| trusted_response_url(url, &state.slack_settings.api_url));
    let what = format!("{command} {email}");
    let work = {
        let (state, response_url) = (state.clone(), response_url.clone());
        async move {
            let message =
                propose_in_background(&state, &user, action, email, reason, &command).await;
            if let Some(url) = response_url {
                super::command_tasks::answer(&state.http, &url, message).await;
            }
        }
    };
    // Tracked, so a graceful shutdown waits for it (DESIGN §4: answer, then do the slow work).
    state.commands.spawn(response_url, what, work);
    ephemeral(acknowledged)
}

async fn propose_in_background(
    state: &AppState,
    user: &SlackUserId,
    action: Action,
    email: Email,
    reason: Reason,
    command: &str,
) -> String {
    // The requester as a decider: their own command may count as their approval (a Slack
    // failure here only means it does not).
    let decider = state.directory.decider(&state.policy, user).await.ok();
    let name = decider
        .as_ref()
        .map_or_else(|| user.to_string(), |d| d.name.clone());
    let requester = Requester::SlackUser {
        slack_user_id: user.clone(),
        name,
    };
    let source = Source {
        platform: "slack".into(),
        rule: Some(command.to_owned()),
        ..Source::default()
    };
    let new = NewProposal {
        action,
        user: UserRef::Email(email.clone()),
        reason,
        source,
        callback_url: None,
    };
    match intake::propose(state, requester, new, None, decider.as_ref()).await {
        Ok(Intake::Created(proposal)) => {
            let counted = counted(&proposal, user);
            let link = card_link(state, &proposal).await;
            format!(
                "Proposed: {} {}. {counted}{link}",
                proposal.action.as_str(),
                escape(email.as_str())
            )
        }
        Ok(Intake::FoldedInto(proposal) | Intake::Replayed(proposal)) => format!(
            "A {} proposal for {} was already pending; your reason was added to it as evidence. {}",
            proposal.action.as_str(),
            escape(email.as_str()),
            card_link(state, &proposal).await
        ),
        Err(IntakeError::UnknownUser(what)) => format!(
            "No 1Password user has {}; nothing was recorded.",
            escape(&what)
        ),
        Err(error @ IntakeError::OppositePending { .. }) => {
            format!("{error}. Nothing was recorded.")
        }
        Err(IntakeError::Ungovernable(why)) => escape(&why),
        Err(IntakeError::OnePassword(error)) => {
            format!("countersign could not look the user up in 1Password ({error}); nothing was recorded. Try again.")
        }
        Err(error) => {
            tracing::error!(%error, "slash command proposal failed");
            "countersign could not record the proposal; nothing was recorded. Try again.".into()
        }
    }
}

/// Tells the requester whether their own command counted as their approval.
fn counted(proposal: &Proposal, user: &SlackUserId) -> String {
    if proposal.approvals.iter().any(|a| a.slack_user_id == *user) {
        return "Your request counts as your approval. ".into();
    }
    match proposal.action {
        Action::Restore => "A restore needs two approvers other than you. ".into(),
        Action::Suspend => format!(
            "It needs {} approval(s) from approvers. ",
            proposal.approvals_required
        ),
    }
}

/// Where the card is, once the worker has posted it (a few seconds at most).
async fn card_link(state: &AppState, proposal: &Proposal) -> String {
    for _ in 0..50 {
        if let Ok(Some(current)) = state.ledger.proposal(proposal.id).await {
            if let Some(slack) = current.slack {
                return format!("Card: {}", message_link(&slack.channel, &slack.ts));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    format!(
        "The card will appear in <#{}>.",
        state.slack_settings.channel
    )
}

/// `/approvals drift`: the last changes made in 1Password outside countersign.
async fn drift_listing(state: &AppState, is_approver: bool) -> Response {
    if !is_approver {
        return ephemeral("Only approvers can list drift.");
    }
    let events = match state.ledger.drift_events(None, 10).await {
        Ok(events) => events,
        Err(error) => {
            tracing::error!(%error, "could not read drift");
            return ephemeral("countersign could not read the ledger. Try again.");
        }
    };
    if events.is_empty() {
        return ephemeral("No drift: every change countersign saw in 1Password was its own.");
    }
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let actors = state.ledger.drift_actors(&seqs).await.unwrap_or_default();
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            let p = &e.payload;
            let by = actors
                .get(&e.seq)
                .map_or("outside countersign".to_owned(), |a| {
                    let from =
                        a.ip.as_deref()
                            .map(|ip| format!(" from {ip}"))
                            .unwrap_or_default();
                    format!("by {}{from}", a.who())
                });
            format!(
                "• {} {} → {} {}, noticed {}",
                escape(p["email"].as_str().or(p["user_id"].as_str()).unwrap_or("?")),
                p["from"].as_str().unwrap_or("?"),
                p["to"].as_str().unwrap_or("?"),
                escape(&by),
                e.at
            )
        })
        .collect();
    ephemeral(format!("*Drift, newest first*\n{}", lines.join("\n")))
}

async fn approvals(state: &AppState, user: &SlackUserId, listing: Listing) -> Response {
    let is_approver = match is_member(state, &state.policy.approvers, user).await {
        Ok(member) => member,
        Err(refused) => return refused,
    };
    let allowed = is_approver
        || match is_member(state, state.policy.requesters(), user).await {
            Ok(member) => member,
            Err(refused) => return refused,
        };
    if !allowed {
        return ephemeral("Only approvers and requesters can list proposals.");
    }
    if listing == Listing::Drift {
        return drift_listing(state, is_approver).await;
    }
    let (title, query) = match &listing {
        Listing::Pending | Listing::Mine | Listing::Drift => (
            "Pending proposals",
            ProposalQuery {
                status: Some(Status::Pending),
                limit: 200,
                ..ProposalQuery::default()
            },
        ),
        Listing::About(email) => (
            "Proposals about that user",
            ProposalQuery {
                target_email: Some(email.clone()),
                limit: 20,
                ..ProposalQuery::default()
            },
        ),
    };
    let found = match state.ledger.proposals(&query).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "could not list proposals");
            return ephemeral("countersign could not read its ledger; try again.");
        }
    };
    let shown: Vec<_> = match listing {
        Listing::Mine => found
            .into_iter()
            .filter(|p| {
                p.is_requested_by(user)
                    || (is_approver && !p.approvals.iter().any(|a| a.slack_user_id == *user))
            })
            .take(20)
            .collect(),
        _ => found.into_iter().take(20).collect(),
    };
    if shown.is_empty() {
        return ephemeral("No proposals match.");
    }
    let lines: Vec<String> = shown.iter().map(line).collect();
    ephemeral(format!("*{title}*\n{}", lines.join("\n")))
}

fn line(p: &Proposal) -> String {
    let link = p
        .slack
        .as_ref()
        .map(|s| format!(" · <{}|card>", message_link(&s.channel, &s.ts)))
        .unwrap_or_default();
    format!(
        "• {} {} ({}): {} · {}{link}",
        p.action.as_str(),
        escape(&p.target.display_name),
        escape(p.target.email.as_str()),
        p.status,
        card::tally(p)
    )
}
