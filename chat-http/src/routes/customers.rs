//! Customer login: start or resume the customer's one chat and get a token scoped to it.
//! Signature checks and chat creation are the service's; this only parses.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use chatcore::{CustomerId, CustomerLogin, CustomerSession, OfficerId};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{ClientIp, Json};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/customers/login", post(login))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    customer_id: String,
    officer_id: Option<String>,
    signature: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Json<CustomerSession>, ApiError> {
    // Ids are read as strings so a malformed one is 422 `invalid_id`, not a body error.
    let login = CustomerLogin {
        customer_id: CustomerId::parse(body.customer_id)?,
        officer_id: body.officer_id.map(OfficerId::parse).transpose()?,
        signature: body.signature,
    };
    // A wrong signature counts against the client address's failed logins.
    let attempt = state.service().customer_login(login);
    Ok(Json(state.limits().login(client, attempt).await?))
}
