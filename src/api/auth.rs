//! Bearer-token authentication: the extractor that turns `Authorization: Bearer …` into the
//! token's record, or a 401.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::app::state::AppState;
use crate::domain::Viewer;
use crate::ledger::{ApiToken, Scope};

/// The authenticated caller of an API route.
pub struct Caller(pub ApiToken);

impl Caller {
    /// Who is looking, for what of a proposal this token may see.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            token_id: &self.0.id,
            reads_all: self.0.has(Scope::Read),
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(scope.as_str()))
        }
    }
}

/// A caller that may propose something: refused before its body is read otherwise.
pub struct Proposer(pub Caller);

impl FromRequestParts<AppState> for Proposer {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.0.has(Scope::ProposeSuspend) || caller.0.has(Scope::ProposeRestore) {
            Ok(Proposer(caller))
        } else {
            Err(Problem::forbidden("propose:suspend or propose:restore"))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized("send Authorization: Bearer <token>"))?;
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("the Authorization header must be Bearer <token>")
            })?;
        let token = state
            .ledger
            .authenticate(secret)
            .await?
            .ok_or_else(|| Problem::unauthorized("the token is unknown or revoked"))?;
        if let Err(wait) = state
            .rate_limiter
            .take(&token.id, std::time::Instant::now())
        {
            let seconds = wait.as_secs().max(1);
            return Err(Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!("this token is over its rate limit; retry in {seconds} s"),
            )
            .with_retry_after(seconds));
        }
        Ok(Caller(token))
    }
}
