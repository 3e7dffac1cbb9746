//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every route, generated from
//! the route code. Each handler carries its `#[utoipa::path]` (method, path, parameters,
//! bodies, answers, examples) and is registered with `utoipa_axum::routes!`, which adds
//! it to the router and to the description in one step: the router [`crate::app`] serves
//! is the one the description was collected from, so neither can list a route the other
//! lacks. This file holds only what is shared: the document's header, the bearer scheme,
//! the contract's error body, and the one route axum and OpenAPI spell differently.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa::{Modify, ToSchema};

/// The contract's error body: `{"error":{"code","message"}}` (docs/API.md, "Errors").
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "chat_not_found", "message": "no such chat"}}))]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// A refusal: its code (one of docs/API.md's) and a sentence to act on.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// The contract's snake_case code.
    code: String,
    /// What went wrong, in words a person can act on.
    message: String,
}

/// The served document, made once when the router is built.
#[derive(Clone)]
pub(crate) struct Spec(pub(crate) Arc<String>);

/// `GET /api/openapi.json`: anyone.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"))
)]
pub(crate) async fn spec(Extension(spec): Extension<Spec>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec.0.as_str().to_owned(),
    )
}

/// Adds the header and the bearer scheme to what the routes gave.
struct Header;

impl Modify for Header {
    fn modify(&self, api: &mut OpenApi) {
        api.info = InfoBuilder::new()
            .title("chat-http")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "Real-time customer-support chat: REST and WebSocket (docs/API.md). \
                 Bearer tokens: an officer's or customer's session token from a login, \
                 or the admin token.",
            ))
            .build();
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The finished document from the routes' descriptions, with the one route whose path
/// OpenAPI cannot spell as axum does (the assets' wildcard `{*path}`, described as
/// `/assets/{path}` by its handler's annotation).
pub(crate) fn finish(mut api: OpenApi) -> OpenApi {
    use utoipa::Path;
    type Asset = crate::pages::__path_asset;
    api.paths
        .add_path_operation(Asset::path(), Asset::methods(), Asset::operation());
    Header.modify(&mut api);
    api
}

/// The OpenAPI description of the router [`crate::app`] builds (the same registrations,
/// without a state).
pub fn document() -> OpenApi {
    finish(crate::router_parts().1)
}
