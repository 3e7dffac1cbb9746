//! `GET /api/branding`: the customer page's branding as JSON (docs/API.md, "Branding"),
//! for anyone, without a token: the page needs it before anyone has logged in. It only
//! answers what `--branding` configured; it must not hold any rule.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;

use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/branding", get(branding))
}

async fn branding(State(state): State<AppState>) -> Json<Value> {
    Json(state.branding().to_json())
}
