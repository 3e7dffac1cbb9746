//! `GET /`: a short note of what this server serves and how it is configured (open
//! mode, customer ids on trust). It must not reveal any secret.

use axum::extract::State;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index))
}

/// Where things are: anyone.
#[utoipa::path(get, path = "/", tag = "meta",
    responses((status = 200, description = "Where the pages, the API and the socket are", body = Object,
        example = json!({"service": "chat-http", "api": "/api (see docs/API.md)", "websocket": "/ws"}))))]
async fn index(State(state): State<AppState>) -> Json<Value> {
    let config = state.service().config();
    Json(json!({
        "service": "chat-http",
        "api": "/api (see docs/API.md)",
        "websocket": "/ws",
        "health": "/healthz",
        "customerPage": "/customer",
        "officerConsole": "/officer",
        "adminConsole": "/admin",
        "openMode": config.open_mode(),
        "customerIdsOnTrust": config.customer_secret.is_none(),
    }))
}
