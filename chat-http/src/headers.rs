//! Headers every answer carries for the browser's sake: `X-Content-Type-Options:
//! nosniff` on all of them (no answer is ever run as another type than it says), and
//! `Cache-Control: no-store` on every `/api/` answer, so that tokens and chats are kept
//! in no cache. It sets headers only; it must not change a status or a body.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use axum::middleware::Next;
use axum::response::Response;

/// The middleware (see the module doc).
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    if api {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
