//! The REST routes, one file per resource, each with its own `router()`. Handlers parse,
//! call one `ChatService` method and shape the answer; they must not check rights or
//! validate beyond the wire format, which is the service's job.

mod attachments;
mod branding;
mod chats;
mod customers;
mod health;
mod index;
mod officers;
mod reports;
mod sessions;
mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every REST route, each with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(index::router())
        .merge(branding::router())
        .merge(health::router())
        .merge(officers::router())
        .merge(customers::router())
        .merge(chats::router())
        .merge(attachments::router())
        .merge(sessions::router())
        .merge(webhooks::router())
        .merge(reports::router())
}
