//! `GET /healthz`: 200 when the store can serve, else 503 with the error body. It must
//! not do more than ask the service.

use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::Json;
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Whether the store can serve: anyone.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses(
        (status = 200, description = "Healthy", body = Object, example = json!({"status": "ok"})),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.service().health().await {
        Ok(()) => Ok(Json(json!({ "status": "ok" }))),
        // Whatever the cause, an unhealthy store is "unavailable" to a prober.
        Err(e) if e.kind() == chatcore::ErrorKind::Internal => {
            tracing::error!(error = ?e, "health check failed");
            Err(ApiError::transport(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store cannot serve right now",
            ))
        }
        Err(e) => Err(e.into()),
    }
}
