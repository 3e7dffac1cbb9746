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
mod sessions;
mod webhooks;

use axum::Router;

use crate::state::AppState;

/// Every REST route.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(index::router())
        .merge(branding::router())
        .merge(health::router())
        .merge(officers::router())
        .merge(customers::router())
        .merge(chats::router())
        .merge(attachments::router())
        .merge(sessions::router())
        .merge(webhooks::router())
}
