//! `GET /`: a short note of what this server serves and how it is configured (open
//! mode, customer ids on trust). It must not reveal any secret.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/", get(index))
}

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
