//! Sessions: `GET /api/me` (who this token is) and `POST /api/logout` (revokes the
//! caller's own bearer token). Whether the token is valid is decided by `ChatService`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chatcore::Me;

use crate::error::ApiError;
use crate::extract::{Auth, AuthToken, Json};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
}

/// Who the token is: `{ role, subject, officer? }`; 401 without a valid token.
async fn me(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Me>, ApiError> {
    Ok(Json(state.service().me(&actor).await?))
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
