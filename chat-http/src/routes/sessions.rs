//! Sessions: `GET /api/me` (who this token is) and `POST /api/logout` (revokes the
//! caller's own bearer token). Whether the token is valid is decided by `ChatService`.

use axum::extract::State;
use axum::http::StatusCode;
use chatcore::Me;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, AuthToken, Json};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Who the token is: `{ role, subject, officer? }`; 401 without a valid token.
#[utoipa::path(get, path = "/api/me", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Who the token is", body = Me),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
async fn me(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<Me>, ApiError> {
    Ok(Json(state.service().me(&actor).await?))
}

/// 204 once the token no longer works. The admin token is configuration, not a
/// session: it stays valid.
#[utoipa::path(post, path = "/api/logout", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, description = "No valid token", body = ErrorBody),
    ))]
async fn logout(
    State(state): State<AppState>,
    AuthToken(token): AuthToken,
) -> Result<StatusCode, ApiError> {
    state.service().logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}
