//! Bearer-token authentication: the extractor that turns `Authorization: Bearer …` into the
//! token's record, or a 401.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::ledger::{ApiToken, Scope};
use crate::state::AppState;

/// The authenticated caller of an API route.
pub struct Caller(pub ApiToken);

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(scope.as_str()))
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
        Ok(Caller(token))
    }
}
