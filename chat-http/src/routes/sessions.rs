//! `POST /api/logout`: revokes the caller's own bearer token (an extension of the
//! contract; see docs/API.md). Whether the token is valid is decided by `ChatService`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::error::ApiError;
use crate::extract::AuthToken;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/logout", post(logout))
}

/// 204 once the token no longer works. The admin token is configuration, not a
/// session: it stays valid.
async fn logout(
    State(state): State<AppState>,
    AuthToken(token): AuthToken,
) -> Result<StatusCode, ApiError> {
    state.service().logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}
