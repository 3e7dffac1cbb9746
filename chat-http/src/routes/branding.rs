//! `GET /api/branding`: the customer page's branding as JSON (docs/API.md, "Branding"),
//! for anyone, without a token: the page needs it before anyone has logged in. It only
//! answers what `--branding` configured; it must not hold any rule.

use axum::extract::State;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(branding))
}

/// The customer page's branding: anyone.
#[utoipa::path(get, path = "/api/branding", tag = "meta",
    responses((status = 200, description = "The branding (docs/API.md, Branding)", body = Object,
        example = json!({"name": "Example Bank", "primaryColor": "#0b5394"}))))]
async fn branding(State(state): State<AppState>) -> Json<Value> {
    Json(state.branding().to_json())
}
