//! `chat-http`: the REST + WebSocket server of the wire contract (docs/API.md), a thin
//! axum adapter over `chatcore`. It parses requests, resolves bearer tokens to a
//! `chatcore::Actor`, calls `chatcore::ChatService` and maps results and errors to HTTP
//! and WebSocket frames. It must hold no rule of its own: every permission check,
//! validation and state change is a service call.
//!
//! # Layout
//!
//! - [`config`]: the `Config` clap struct (flags with env fallbacks).
//! - [`branding`]: the customer page's branding (`--branding`), checked at start.
//! - [`state`]: [`AppState`], what handlers share (the service, transport settings).
//! - [`error`]: [`ApiError`], the one mapping of errors to status and JSON body.
//! - [`extract`]: extractors whose rejections speak the contract, `Auth`, `ClientIp` and
//!   a WebSocket upgrade's `AllowedOrigin`.
//! - [`limits`]: the transport's abuse limits (per client address, per WebSocket).
//! - [`conn`]: the accept loop and connections: header-read, keep-alive and write
//!   timeouts, caps on open connections per address and in all.
//! - `trace`: the span each request is logged in (secrets in query strings redacted).
//! - `headers`: `nosniff` on every answer, `Cache-Control: no-store` on the API's.
//! - `routes/`: REST routes by resource (officers, customers, chats, attachments, health,
//!   index, branding).
//! - `download`: a stored file on the wire: `Range` read against its size, and a safe
//!   `Content-Disposition`.
//! - `live`: the real-time session layer both transports share (session, rooms, feeds,
//!   budgets); `ws`: the WebSocket endpoint `/ws`; `socketio`: Socket.IO at `/socket.io/`.
//! - `pages`: the customer page, officer console and admin console (`assets/`, embedded at
//!   build time), the favicon and the branding's logo.
//! - [`shutdown`]: graceful shutdown (signals, socket tracking).
//! - `timing`: the optional `Server-Timing` header (`--server-timing`).
//! - [`metrics`]: the Prometheus recorder, the per-route request metrics and
//!   `GET /metrics` (and `--metrics-bind`'s own listener).
//! - [`openapi`]: `GET /api/openapi.json`, the OpenAPI 3.1 description gathered from
//!   the routes' annotations as they are registered.
//! - `testing` (feature `testing`): `TestServer`, a real server for other crates' tests.
//! - [`webhooks`]: the webhooks' HTTP requests (`HttpSender`, the engine's
//!   `WebhookSender` on hyper's client connections); `webhooks_tls`: TLS for `https`
//!   receivers (the trusted roots, the handshake); `routes/webhooks.rs` the admin's
//!   `/api/webhooks`.
//!
//! [`app`] builds the router; [`serve`] runs it on a listener until a shutdown future
//! resolves, then closes the sockets (1001) and the store.

pub mod branding;
pub mod config;
pub mod conn;
mod download;
pub mod error;
pub mod extract;
mod headers;
pub mod limits;
mod live;
pub mod metrics;
pub mod openapi;
mod pages;
mod routes;
pub mod shutdown;
mod socketio;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod timing;
mod trace;
pub mod webhooks;
mod webhooks_tls;
mod ws;

use std::time::Duration;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::{Extension, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use branding::Branding;
pub use config::Config;
pub use conn::ConnSettings;
pub use error::ApiError;
pub use limits::HttpLimits;
pub use state::{AppState, AppStateBuilder, WsSettings};
pub use ws::{CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED};

/// How long `serve` waits for WebSockets to close after the shutdown has started.
const SOCKET_DRAIN: Duration = Duration::from_secs(5);

/// Every route with its OpenAPI description, registered together (`utoipa_axum`): the
/// router and the description come from the same registrations.
fn router_parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    routes::router()
        .merge(pages::router())
        .merge(ws::router())
        .merge(socketio::router())
        .routes(utoipa_axum::routes!(metrics::metrics_route))
        .routes(utoipa_axum::routes!(openapi::spec))
        .split_for_parts()
}

/// The router: every REST route, `/ws`, `/metrics`, `/api/openapi.json`, JSON 404 and
/// 405 answers, the body limit, a tracing span per request (secrets redacted), each
/// request counted and timed by route, the security headers and, when origins are
/// configured, CORS.
pub fn app(state: AppState) -> Router {
    let (router, api) = router_parts();
    let spec = openapi::finish(api)
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let mut router = router
        .layer(Extension(openapi::Spec(Arc::new(spec))))
        .layer(Extension(socketio::Endpoint::new(&state)))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.body_limit()))
        // The span holds method, URI (secrets redacted), version and client, never
        // headers: tokens and signatures stay out of the logs.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::RequestSpan::new(
                    &state.limits().settings().trusted_proxies,
                ))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        // Each request counted and timed under its route template.
        .layer(axum::middleware::from_fn(metrics::track));
    if let Some(cors) = cors(state.cors_origins()) {
        router = router.layer(cors);
    }
    if state.server_timing() {
        router = router.layer(axum::middleware::from_fn(timing::server_timing));
    }
    // Outermost, so that CORS preflights and every rejection carry them too.
    router
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o) {
            Ok(v) => Some(v),
            Err(_) => {
                tracing::warn!(origin = %o, "ignoring malformed CORS origin");
                None
            }
        })
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                HeaderName::from_static("authorization"),
                HeaderName::from_static("content-type"),
                HeaderName::from_static("range"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Serves [`app`] on `listener` until `shutdown` resolves, under the connection
/// timeouts and caps of [`ConnSettings`]; then stops accepting, finishes in-flight
/// requests, closes WebSockets with 1001, and closes the store (flushing accepted writes)
/// last. Also purges expired sessions and sweeps orphaned attachments periodically, and
/// runs the webhooks' delivery worker (stopped before the store closes).
/// Give `listener` a deep backlog (the
/// binary asks for 4,096): refused connections are accepted and closed by one task, and
/// while its queue is full the kernel drops every new client's SYN.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.shutdown().clone();
    let purge = tokio::spawn(purge_sessions(state.clone()));
    let sweep = tokio::spawn(sweep_attachments(state.clone()));
    let webhooks = start_webhooks(&state)?;
    let upkeep = tokio::spawn(metrics_upkeep(state.clone()));
    conn::serve(
        listener,
        app(state.clone()),
        state.connections(),
        state.caps().clone(),
        &stopping,
        shutdown,
    )
    .await;
    // Upgraded sockets are not connections the accept loop waits for: `conn::serve`
    // told them when the shutdown started; give them time to close.
    stopping.trigger();
    let still_open = stopping.sockets_closed(SOCKET_DRAIN).await;
    if still_open > 0 {
        tracing::warn!(still_open, "WebSockets still open at shutdown");
    }
    purge.abort();
    sweep.abort();
    webhooks.stop().await;
    upkeep.abort();
    if let Err(e) = state.service().close().await {
        tracing::error!(error = ?e, "closing the store failed");
    }
    tracing::info!("server stopped");
    Ok(())
}

/// This node's webhook delivery worker (the engine's), sending with the state's
/// [`webhooks::HttpSender`], else one trusting the system's CA roots; on a thread of
/// its own when the state says so ([`AppStateBuilder::webhook_thread`]).
fn start_webhooks(state: &AppState) -> std::io::Result<webhooks::Worker> {
    let sender = state
        .webhook_sender()
        .cloned()
        .unwrap_or_else(webhooks::HttpSender::new);
    webhooks::start_worker(state.service().clone(), sender, state.webhook_nice())
}

/// At start and then as often as sessions are purged: removes attachments' bytes no
/// message points at (a crash between storing them and their message) and leftovers of
/// uploads that never finished, once older than the engine's grace.
async fn sweep_attachments(state: AppState) {
    let mut every = tokio::time::interval(state.purge_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = state.service().sweep_attachments().await {
            tracing::warn!(error = ?e, "sweeping attachments failed");
        }
    }
}

/// Folds the histograms' recent samples in every few seconds, so that their memory stays
/// bounded between scrapes.
async fn metrics_upkeep(state: AppState) {
    let Some(handle) = state.metrics().cloned() else {
        return;
    };
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

async fn purge_sessions(state: AppState) {
    let mut every = tokio::time::interval(state.purge_interval());
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.service().purge_expired_sessions().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sessions deleted"),
            Err(e) => tracing::warn!(error = ?e, "purging expired sessions failed"),
        }
    }
}
