//! The drift message's **Propose suspension again** button: an approver's click makes a
//! normal suspend proposal about the user who was reactivated outside countersign, with the
//! clicker as requester and the usual policy (their click counts as their approval when the
//! policy lets a requester's own suspend count).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::reply::tell;
use crate::app::intake::{self, Intake, NewProposal, UserRef};
use crate::app::state::AppState;
use crate::domain::authority;
use crate::domain::{Action, Email, OnePasswordUserId, Reason, Requester, SlackUserId, Source};

pub async fn click(
    state: &AppState,
    channel: Option<&str>,
    user: &SlackUserId,
    value: Option<&str>,
) -> Response {
    let event = match value.and_then(|v| v.parse::<i64>().ok()) {
        Some(seq) => state.ledger.drift_event(seq).await.ok().flatten(),
        None => None,
    };
    let Some(event) = event else {
        tell(
            state,
            channel,
            user,
            "That button names no drift countersign recorded.".into(),
        );
        return StatusCode::OK.into_response();
    };
    let Some(target) = event.payload["user_id"]
        .as_str()
        .and_then(|id| OnePasswordUserId::parse(id).ok())
    else {
        tell(
            state,
            channel,
            user,
            "That drift names no 1Password user.".into(),
        );
        return StatusCode::OK.into_response();
    };
    let email = event.payload["email"]
        .as_str()
        .and_then(|e| Email::parse(e).ok());
    let decider = match state.directory.decider(&state.policy, user).await {
        Ok(decider) => decider,
        Err(error) => {
            tracing::warn!(%error, %user, "could not read the clicker from Slack");
            let refused = "countersign could not read your Slack profile, so it refused (fail closed). Try again.";
            tell(state, channel, user, refused.into());
            return StatusCode::OK.into_response();
        }
    };
    if let Err(refusal) = authority::may_act_about(&decider, email.as_ref()) {
        tell(state, channel, user, refusal.to_string());
        return StatusCode::OK.into_response();
    }
    let reason = Reason::parse(&format!(
        "Reactivated in 1Password outside countersign (drift seq {}, noticed {}); suspension proposed again",
        event.seq, event.at
    ))
    .or_else(|_| Reason::parse("Reactivated in 1Password outside countersign; suspension proposed again"))
    .expect("a fixed reason of valid length");
    let new = NewProposal {
        action: Action::Suspend,
        user: UserRef::Id(target),
        reason,
        source: Source {
            platform: "countersign".into(),
            alert_id: Some(format!("drift:{}", event.seq)),
            rule: Some("drift".into()),
            ..Source::default()
        },
        callback_url: None,
    };
    let requester = Requester::SlackUser {
        slack_user_id: user.clone(),
        name: decider.name.clone(),
    };
    let (worker, channel, user) = (state.clone(), channel.map(str::to_owned), user.clone());
    // The proposal needs a 1Password lookup; Slack is answered at once.
    state
        .commands
        .spawn(None, "Propose suspension again".into(), async move {
            let told = match intake::propose(&worker, requester, new, None, Some(&decider)).await {
                Ok(Intake::Created(p) | Intake::FoldedInto(p) | Intake::Replayed(p)) => format!(
                    "Suspension of {} proposed again ({}); it follows the usual policy.",
                    super::mrkdwn::escape(p.target.email.as_str()),
                    p.status
                ),
                Err(error) => format!("countersign could not propose the suspension: {error}"),
            };
            tell(&worker, channel.as_deref(), &user, told);
        });
    StatusCode::OK.into_response()
}
