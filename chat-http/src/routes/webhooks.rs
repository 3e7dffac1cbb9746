//! Webhook routes (the admin's): create, list, read and delete webhooks, list pending
//! and dead deliveries, retry dead ones. Who may do each, and what a webhook may be, is
//! decided by `ChatService`, never here.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chatcore::store::DeliveryQuery;
use chatcore::{CreatedWebhook, NewWebhook, Webhook, WebhookDelivery};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Auth, Json, OptionalJson, Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/webhooks", post(create).get(list))
        .route("/api/webhooks/deliveries", get(deliveries))
        .route("/api/webhooks/retry", post(retry))
        .route("/api/webhooks/{webhook_id}", get(one).delete(delete))
}

#[derive(Deserialize)]
struct CreateBody {
    url: String,
    secret: Option<String>,
    events: Option<Vec<String>>,
}

/// 201 with the webhook and its secret (given, or generated when absent), this once.
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

async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Json<Vec<Webhook>>, ApiError> {
    Ok(Json(state.service().webhooks(&actor).await?))
}

async fn one(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(state.service().webhook(&actor, &id).await?))
}

async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service().delete_webhook(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveriesParams {
    /// `pending` (the default) or `dead`.
    state: Option<String>,
    webhook_id: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

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

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RetryBody {
    webhook_id: Option<String>,
    delivery_id: Option<i64>,
}

#[derive(Serialize)]
struct Retried {
    retried: u64,
}

/// Retries dead deliveries: all (no body, or `{}`), one webhook's (`webhookId`), or one
/// (`deliveryId`).
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
