//! Webhook routes (the admin's): create, list, read and delete webhooks, list pending
//! and dead deliveries, retry dead ones. Who may do each, and what a webhook may be, is
//! decided by `ChatService`, never here.

use axum::extract::State;
use axum::http::StatusCode;
use chatcore::store::DeliveryQuery;
use chatcore::{CreatedWebhook, NewWebhook, Webhook, WebhookDelivery};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{Auth, Json, OptionalJson, Path, Query};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(deliveries))
        .routes(routes!(retry))
        .routes(routes!(one, delete))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"url": "http://crm.internal:8080/chat-events", "events": ["new_message"]}))]
struct CreateBody {
    /// Where events are POSTed: an `http://` or `https://` URL.
    url: String,
    /// The signing secret, 16-256 characters; absent: a random one, in the answer.
    secret: Option<String>,
    /// `chat_updated`, `new_message`; absent: both.
    events: Option<Vec<String>>,
}

/// Creates a webhook (the admin): 201 with the webhook and its secret (given, or
/// generated when absent), this once.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The webhook and its secret, shown this once", body = CreatedWebhook),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the URL, the secret or an event name; too many webhooks", body = ErrorBody),
    ))]
async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let new = NewWebhook {
        url: body.url,
        secret: body.secret,
        events: body.events,
    };
    let created = state.service().create_webhook(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every webhook with its pending and dead deliveries, never its secret (the admin).
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every webhook", body = Vec<Webhook>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
    ))]
async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    Ok(Json(state.service().webhooks(&actor).await?))
}

/// One webhook (the admin).
#[utoipa::path(get, path = "/api/webhooks/{webhookId}", tag = "webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn one(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(state.service().webhook(&actor, &id).await?))
}

/// Deletes a webhook and its deliveries, pending and dead (the admin).
#[utoipa::path(delete, path = "/api/webhooks/{webhookId}", tag = "webhooks", security(("bearer" = [])),
    params(("webhookId" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service().delete_webhook(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct DeliveriesParams {
    /// `pending` (the default) or `dead`.
    state: Option<String>,
    /// Only this webhook's.
    webhook_id: Option<String>,
    /// Only deliveries with a greater id (to page on).
    after: Option<i64>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<u32>,
}

/// Pending or dead deliveries, oldest first (the admin).
#[utoipa::path(get, path = "/api/webhooks/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(DeliveriesParams),
    responses(
        (status = 200, description = "Deliveries, oldest first", body = Vec<WebhookDelivery>),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
    ))]
async fn deliveries(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Query(params): Query<DeliveriesParams>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    let dead = match params.state.as_deref() {
        None | Some("pending") => false,
        Some("dead") => true,
        Some(_) => {
            return Err(chatcore::Error::InvalidParameter {
                name: "state",
                reason: "must be pending or dead".into(),
            }
            .into());
        }
    };
    let query = DeliveryQuery {
        webhook_id: params.webhook_id,
        dead,
        after_id: params.after,
        limit: params.limit.unwrap_or(100),
    };
    Ok(Json(
        state.service().webhook_deliveries(&actor, query).await?,
    ))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"webhookId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70"}))]
struct RetryBody {
    /// Only this webhook's dead deliveries.
    webhook_id: Option<String>,
    /// Only this dead delivery.
    delivery_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"retried": 12}))]
struct Retried {
    /// How many dead deliveries are pending again.
    retried: u64,
}

/// Retries dead deliveries (the admin): all (no body, or `{}`), one webhook's
/// (`webhookId`), or one (`deliveryId`).
#[utoipa::path(post, path = "/api/webhooks/retry", tag = "webhooks", security(("bearer" = [])),
    request_body(content = Option<RetryBody>, description = "Optional: which dead deliveries"),
    responses(
        (status = 200, description = "How many are pending again", body = Retried),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin", body = ErrorBody),
        (status = 404, description = "`webhook_not_found`", body = ErrorBody),
    ))]
async fn retry(
    State(state): State<AppState>,
    Auth(actor): Auth,
    OptionalJson(body): OptionalJson<RetryBody>,
) -> Result<Json<Retried>, ApiError> {
    let body = body.unwrap_or_default();
    let retried = state
        .service()
        .retry_webhook_deliveries(&actor, body.webhook_id.as_deref(), body.delivery_id)
        .await?;
    Ok(Json(Retried { retried }))
}
