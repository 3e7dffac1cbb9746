//! Customers: login (start a new chat or resume the open one, and get a token scoped to
//! the customer) with an identity token (`{ identityToken }`) or a customer id (`{
//! customerId, signature?, officerId? }`), and a customer's history of chats. Proofs,
//! officer routing, chat creation and who may read what are the service's; this only
//! parses which of the two bodies it is.

use axum::extract::State;
use axum::http::StatusCode;
use chatcore::{Chat, CustomerId, CustomerLogin, CustomerSession, OfficerId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json, Path};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(chats))
}

/// A customer's chats, newest first: that customer, officers and the admin.
#[utoipa::path(get, path = "/api/customers/{customerId}/chats", tag = "customers",
    security(("bearer" = [])),
    params(("customerId" = CustomerId, Path, description = "The customer")),
    responses(
        (status = 200, description = "Their chats, newest first", body = Vec<Chat>),
        (status = 403, description = "Another customer", body = ErrorBody),
    ))]
async fn chats(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(customer): Path<CustomerId>,
) -> Result<Json<Vec<Chat>>, ApiError> {
    Ok(Json(
        state.service().customer_chats(&actor, &customer).await?,
    ))
}

/// `{ identityToken }`, or `{ customerId, officerId?, signature? }`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"customerId": "cust-1", "signature": "5d41402abc4b2a76b9719d911017c592"}))]
struct LoginBody {
    identity_token: Option<String>,
    customer_id: Option<String>,
    officer_id: Option<String>,
    signature: Option<String>,
}

/// A customer's login: their open chat (created if they have none) and a token.
#[utoipa::path(post, path = "/api/customers/login", tag = "customers",
    request_body = LoginBody,
    responses(
        (status = 200, description = "The chat and the customer's token", body = CustomerSession),
        (status = 400, description = "`invalid_body`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`, `invalid_identity`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Json(body): Json<LoginBody>,
) -> Result<Json<CustomerSession>, ApiError> {
    let service = state.service();
    // Failed proofs (a wrong signature, a token that does not verify) count against the
    // client address's failed logins.
    let session = match (body.identity_token, body.customer_id) {
        (Some(token), None) => {
            let attempt = service.customer_login_with_identity(&token);
            state
                .limits()
                .login(client, "(identity token)", attempt)
                .await?
        }
        (None, Some(customer_id)) => {
            // Ids are read as strings so a malformed one is 422 `invalid_id`, not a body
            // error.
            let login = CustomerLogin {
                customer_id: CustomerId::parse(customer_id)?,
                officer_id: body.officer_id.map(OfficerId::parse).transpose()?,
                signature: body.signature,
            };
            let subject = login.customer_id.to_string();
            let attempt = service.customer_login(login);
            state.limits().login(client, &subject, attempt).await?
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::transport(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body must have either `identityToken` or `customerId` (with \
                 `signature` on a secured server), not both",
            ));
        }
    };
    Ok(Json(session))
}
