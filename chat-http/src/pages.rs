//! The browser pages: `/customer`, `/officer`, `/admin`, their static assets and
//! `/favicon.ico`, embedded in the binary at build time so that `cargo run -p chat-http`
//! is all a newcomer needs, and the logo of `--branding`, read at start. Served with a
//! strict Content-Security-Policy (scripts and styles from this origin only, no inline
//! script). The customer page and the officer console get the server's settings they
//! show as JSON data blocks (the branding; what files may be attached). This module
//! serves files; it must not hold any chat logic, which is the pages' JavaScript talking
//! to the REST and WebSocket API.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::Path;
use crate::state::AppState;

/// Every embedded file: (path under /assets, content type, contents).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("favicon.svg", SVG, include_bytes!("../assets/favicon.svg")),
    ("favicon.ico", ICO, include_bytes!("../assets/favicon.ico")),
    (
        "js/branding.js",
        JS,
        include_bytes!("../assets/js/branding.js"),
    ),
    (
        "js/components/brandHeader.js",
        JS,
        include_bytes!("../assets/js/components/brandHeader.js"),
    ),
    ("styles.css", CSS, include_bytes!("../assets/styles.css")),
    ("js/api.js", JS, include_bytes!("../assets/js/api.js")),
    (
        "js/session.js",
        JS,
        include_bytes!("../assets/js/session.js"),
    ),
    ("js/socket.js", JS, include_bytes!("../assets/js/socket.js")),
    (
        "js/chatBook.js",
        JS,
        include_bytes!("../assets/js/chatBook.js"),
    ),
    (
        "js/refusals.js",
        JS,
        include_bytes!("../assets/js/refusals.js"),
    ),
    (
        "js/systemEntries.js",
        JS,
        include_bytes!("../assets/js/systemEntries.js"),
    ),
    (
        "js/throttle.js",
        JS,
        include_bytes!("../assets/js/throttle.js"),
    ),
    (
        "js/officers.js",
        JS,
        include_bytes!("../assets/js/officers.js"),
    ),
    (
        "js/following.js",
        JS,
        include_bytes!("../assets/js/following.js"),
    ),
    (
        "js/components/dom.js",
        JS,
        include_bytes!("../assets/js/components/dom.js"),
    ),
    (
        "js/components/composer.js",
        JS,
        include_bytes!("../assets/js/components/composer.js"),
    ),
    (
        "js/components/loginForm.js",
        JS,
        include_bytes!("../assets/js/components/loginForm.js"),
    ),
    (
        "js/components/connection.js",
        JS,
        include_bytes!("../assets/js/components/connection.js"),
    ),
    (
        "js/components/messageList.js",
        JS,
        include_bytes!("../assets/js/components/messageList.js"),
    ),
    (
        "js/components/confirm.js",
        JS,
        include_bytes!("../assets/js/components/confirm.js"),
    ),
    (
        "js/components/chatActions.js",
        JS,
        include_bytes!("../assets/js/components/chatActions.js"),
    ),
    (
        "js/components/chatLists.js",
        JS,
        include_bytes!("../assets/js/components/chatLists.js"),
    ),
    (
        "js/components/earlierChats.js",
        JS,
        include_bytes!("../assets/js/components/earlierChats.js"),
    ),
    (
        "js/components/officerTable.js",
        JS,
        include_bytes!("../assets/js/components/officerTable.js"),
    ),
    (
        "js/components/officerForm.js",
        JS,
        include_bytes!("../assets/js/components/officerForm.js"),
    ),
    (
        "js/components/queueStats.js",
        JS,
        include_bytes!("../assets/js/components/queueStats.js"),
    ),
    (
        "js/components/deskReport.js",
        JS,
        include_bytes!("../assets/js/components/deskReport.js"),
    ),
    (
        "js/components/webhookTable.js",
        JS,
        include_bytes!("../assets/js/components/webhookTable.js"),
    ),
    (
        "js/components/myStatus.js",
        JS,
        include_bytes!("../assets/js/components/myStatus.js"),
    ),
    (
        "js/components/arrivals.js",
        JS,
        include_bytes!("../assets/js/components/arrivals.js"),
    ),
    (
        "js/components/outbox.js",
        JS,
        include_bytes!("../assets/js/components/outbox.js"),
    ),
    (
        "js/components/typing.js",
        JS,
        include_bytes!("../assets/js/components/typing.js"),
    ),
    ("js/files.js", JS, include_bytes!("../assets/js/files.js")),
    (
        "js/components/attachment.js",
        JS,
        include_bytes!("../assets/js/components/attachment.js"),
    ),
    (
        "js/components/attachControl.js",
        JS,
        include_bytes!("../assets/js/components/attachControl.js"),
    ),
    (
        "js/components/readMarks.js",
        JS,
        include_bytes!("../assets/js/components/readMarks.js"),
    ),
    (
        "js/pages/customer.js",
        JS,
        include_bytes!("../assets/js/pages/customer.js"),
    ),
    (
        "js/pages/officer.js",
        JS,
        include_bytes!("../assets/js/pages/officer.js"),
    ),
    (
        "js/pages/admin.js",
        JS,
        include_bytes!("../assets/js/pages/admin.js"),
    ),
];

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SVG: &str = "image/svg+xml";
const ICO: &str = "image/x-icon";

/// An image the server did not write (the branding's logo) gets no rights at all, even
/// when opened on its own: an SVG's scripts and links stay inert.
const IMAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// No script, style or connection from anywhere but this origin; no inline script; no
/// framing. `'self'` in connect-src covers the same-origin WebSocket. Images may also be
/// `blob:` URLs: an attachment's thumbnail is fetched with the bearer token and shown
/// from an object URL the page made (a plain `<img src>` cannot send the token). Only
/// images: `blob:` is in no other directive, so no script, frame or connection can use
/// one.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(customer_page))
        .routes(routes!(officer_page))
        .routes(routes!(admin_page))
        // A path of any depth (`pages/admin.js`): a wildcard, which OpenAPI cannot
        // spell; described as `/assets/{path}` by `asset`'s annotation, added in
        // `crate::openapi::finish`.
        .route("/assets/{*path}", get(asset))
        .routes(routes!(favicon))
        .routes(routes!(logo))
}

/// The admin console.
#[utoipa::path(get, path = "/admin", tag = "pages",
    responses((status = 200, description = "The admin console (HTML)", content_type = "text/html")))]
async fn admin_page() -> Response {
    page(include_str!("../assets/admin.html"))
}

/// Browsers ask for /favicon.ico whatever the pages link.
#[utoipa::path(get, path = "/favicon.ico", tag = "pages",
    responses(
        (status = 200, description = "The icon", content_type = "image/x-icon"),
    ))]
async fn favicon() -> Result<Response, ApiError> {
    named_asset("favicon.ico")
}

fn page(html: &'static str) -> Response {
    file(HTML, html.as_bytes(), "no-cache", CSP)
}

/// The customer page, with the branding written in as a JSON data block (not a script:
/// the page's policy runs none inline), so that its first view already wears it, and
/// what may be attached.
#[utoipa::path(get, path = "/customer", tag = "pages",
    responses((status = 200, description = "The customer page (HTML)", content_type = "text/html")))]
async fn customer_page(State(state): State<AppState>) -> Response {
    let branding = format!(
        r#"<script type="application/json" id="branding-data">{}</script>"#,
        state.branding().to_html_data()
    );
    let html = include_str!("../assets/customer.html")
        .replacen("<!--branding-->", &branding, 1)
        .replacen("<!--attachments-->", &attachments_data(&state), 1);
    file(HTML, html, "no-cache", CSP)
}

/// The officer console, with what may be attached.
#[utoipa::path(get, path = "/officer", tag = "pages",
    responses((status = 200, description = "The officer console (HTML)", content_type = "text/html")))]
async fn officer_page(State(state): State<AppState>) -> Response {
    let html = include_str!("../assets/officer.html").replacen(
        "<!--attachments-->",
        &attachments_data(&state),
        1,
    );
    file(HTML, html, "no-cache", CSP)
}

/// What files the server takes, as a JSON data block (docs/API.md, "Branding" and
/// "Attachments": the pages' part), so that a page can explain a refusal before it
/// sends a byte: `{ "enabled", "maxBytes", "types" }`, the types as MIME types in the
/// server's order. The engine still checks every upload; this only words it early.
fn attachments_data(state: &AppState) -> String {
    let service = state.service();
    let settings = &service.config().attachments;
    let types: Vec<&str> = settings.types.allowed().map(|t| t.mime()).collect();
    let data = json!({
        "enabled": service.blob_store().is_some(),
        "maxBytes": settings.max_bytes,
        "types": types,
    });
    format!(
        r#"<script type="application/json" id="attachments-data">{}</script>"#,
        html_data(&data.to_string())
    )
}

/// JSON as it may stand inside a `<script type="application/json">` element: `<`, `>` and
/// `&` as JSON escapes, so that no value can close the element or open another.
fn html_data(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The pages' scripts, styles and images.
#[utoipa::path(get, path = "/assets/{path}", tag = "pages",
    params(("path" = String, Path, description = "The asset's path, such as `api.js` or `pages/admin.js`")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "`not_found`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn asset(Path(path): Path<String>) -> Result<Response, ApiError> {
    named_asset(&path)
}

fn named_asset(path: &str) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, kind, body)| file(kind, *body, "no-cache", CSP))
        .ok_or_else(|| ApiError::transport(StatusCode::NOT_FOUND, "not_found", "no such asset"))
}

/// The logo of `--branding`, read at start; 404 when none is configured.
#[utoipa::path(get, path = "/branding/logo", tag = "pages",
    responses(
        (status = 200, description = "The logo of `--branding`"),
        (status = 404, description = "No logo configured", body = crate::openapi::ErrorBody),
    ))]
async fn logo(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (kind, bytes) = state
        .branding()
        .logo()
        .ok_or_else(|| ApiError::transport(StatusCode::NOT_FOUND, "not_found", "no logo"))?;
    Ok(file(kind, bytes, "no-cache", IMAGE_CSP))
}

fn file(
    kind: &'static str,
    body: impl Into<axum::body::Body>,
    cache: &'static str,
    csp: &'static str,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, html_data};

    #[test]
    fn page_data_cannot_close_its_element() {
        let data = html_data(r#"{"a":"</script><b>&"}"#);
        assert_eq!(data, r#"{"a":"\u003c/script\u003e\u003cb\u003e\u0026"}"#);
        let back: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(back["a"], "</script><b>&");
    }

    /// The embedded list is written by hand: every file in `assets/` must be in it (the
    /// HTML pages have routes of their own), or a page would import a missing module.
    #[test]
    fn every_file_under_assets_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut stack = vec![root.clone()];
        let mut files = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e != "html") {
                    files.push(
                        path.strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        assert!(!files.is_empty());
        for file in files {
            assert!(
                ASSETS.iter().any(|(p, _, _)| *p == file),
                "assets/{file} is not embedded in pages::ASSETS"
            );
        }
    }
}
