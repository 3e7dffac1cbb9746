//! Prometheus metrics: the process's recorder (installed once, for chatcore's metrics
//! and the transport's own), the layer that counts and times every request by its route
//! template, and `GET /metrics` in the Prometheus text format, on the main address for
//! the admin or, with `--metrics-bind`, on an address of its own without a token.
//! The figures themselves are counted where things happen (chatcore, `ws/`, `limits`);
//! this file only names the transport's and renders them.
//!
//! Labels are bounded: a request's `route` is the router's matched template
//! (`/api/chats/{chatId}/messages`), never the raw path (`unmatched` when no route
//! matched), its `method` one of the standard ones or `other`, its `status` a number.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::extract::Auth;
use crate::state::AppState;

/// Counter: HTTP requests answered, by `route`, `method` and `status`.
pub const HTTP_REQUESTS: &str = "chat_http_requests_total";
/// Histogram: seconds from a request's arrival to its answer's head, by `route` and
/// `method`.
pub const HTTP_DURATION: &str = "chat_http_request_duration_seconds";
/// Gauge: real-time connections open on this node, by `transport`: `ws` (`/ws`) or
/// `socketio` (Socket.IO sockets joined to the namespace, over either Engine.IO
/// transport).
pub const WS_CONNECTIONS: &str = "chat_ws_connections";
/// Counter: frames (events and replies) written to real-time connections, by
/// `transport`: `/ws`'s frames, Socket.IO's events and acknowledgements.
pub const WS_EVENTS_SENT: &str = "chat_ws_events_sent_total";

/// The values of the `transport` label of [`WS_CONNECTIONS`] and [`WS_EVENTS_SENT`].
pub(crate) mod transport {
    /// `/ws`.
    pub(crate) const WS: &str = "ws";
    /// Socket.IO at `/socket.io/`.
    pub(crate) const SOCKETIO: &str = "socketio";
}

/// The webhook delivery metrics (the webhooks' outbox, issue 20), described here with
/// the rest so that one exporter documents every metric; their values come from the
/// delivery worker.
pub const WEBHOOK_PENDING: &str = "chat_webhook_deliveries_pending";
/// Gauge: deliveries given up on (dead), waiting for an operator's retry.
pub const WEBHOOK_DEAD: &str = "chat_webhook_deliveries_dead";
/// Counter: delivery attempts by `outcome`.
pub const WEBHOOK_DELIVERIES: &str = "chat_webhook_deliveries_total";

/// The transport's limits, as `chat_rate_limited_total`'s `limit` label names them.
pub(crate) mod limit {
    pub(crate) const ADDRESS_LOGIN_FAILURES: &str = "address_login_failures";
    pub(crate) const ADDRESS_TOKEN_FAILURES: &str = "address_token_failures";
    pub(crate) const WS_CONNECTS: &str = "ws_connects";
    pub(crate) const ADDRESS_UPLOADS: &str = "address_uploads";
    pub(crate) const WS_FRAMES: &str = "ws_frames";
}

/// Request latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Time to first reply buckets, in seconds: 5 s to 4 h.
const REPLY_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0,
];
/// Batch size buckets (writes per SQLite transaction, events per NOTIFY).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's Prometheus recorder, installed as the global `metrics` recorder the
/// first time it is asked for (the binary asks before it opens the store; a test
/// process's servers share it). `None` when another recorder was installed first (an
/// embedder's own): then `/metrics` answers 404 and the embedder exports its way.
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(chatcore::metrics::FIRST_REPLY.into()),
                        REPLY_BUCKETS,
                    )
                })
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), BATCH_BUCKETS))
                .map(PrometheusBuilder::build_recorder);
            let recorder = match built {
                Ok(recorder) => recorder,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the metrics recorder");
                    return None;
                }
            };
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                tracing::warn!(error = %e, "a metrics recorder is installed already; /metrics is off");
                return None;
            }
            describe();
            Some(handle)
        })
        .clone()
}

/// Help texts and units, and the series with known labels registered at zero.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    chatcore::metrics::describe();
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (its head), by route template and method"
    );
    describe_gauge!(
        WS_CONNECTIONS,
        Unit::Count,
        "Real-time connections open on this node, by transport (ws, socketio)"
    );
    describe_counter!(
        WS_EVENTS_SENT,
        Unit::Count,
        "Frames (events and replies) written to real-time connections, by transport (ws, socketio)"
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        Unit::Count,
        "Webhook deliveries waiting in the outbox"
    );
    describe_gauge!(
        WEBHOOK_DEAD,
        Unit::Count,
        "Webhook deliveries given up on, until retried"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        Unit::Count,
        "Webhook delivery attempts by outcome"
    );
    for transport in [transport::WS, transport::SOCKETIO] {
        let _ = metrics::gauge!(WS_CONNECTIONS, "transport" => transport);
        let _ = metrics::counter!(WS_EVENTS_SENT, "transport" => transport);
    }
    for name in [
        limit::ADDRESS_LOGIN_FAILURES,
        limit::ADDRESS_TOKEN_FAILURES,
        limit::WS_CONNECTS,
        limit::ADDRESS_UPLOADS,
        limit::WS_FRAMES,
    ] {
        chatcore::metrics::register_limit(name);
    }
}

/// A limit of the transport refused a request.
pub(crate) fn rate_limited(limit: &'static str) {
    metrics::counter!(chatcore::metrics::RATE_LIMITED, "limit" => limit).increment(1);
}

/// A real-time connection of `transport` ([`transport`]), counted in [`WS_CONNECTIONS`]
/// while it lives.
pub(crate) struct WsConnection(&'static str);

impl WsConnection {
    pub(crate) fn open(transport: &'static str) -> Self {
        metrics::gauge!(WS_CONNECTIONS, "transport" => transport).increment(1.0);
        Self(transport)
    }
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        metrics::gauge!(WS_CONNECTIONS, "transport" => self.0).decrement(1.0);
    }
}

/// `frames` frames (events, replies) were handed to a connection of `transport` to write.
pub(crate) fn ws_sent(transport: &'static str, frames: usize) {
    if frames > 0 {
        metrics::counter!(WS_EVENTS_SENT, "transport" => transport).increment(frames as u64);
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times each request under its route template (a middleware on the router:
/// the matched route is known there; an answer of the fallback is `unmatched`). The time
/// is to the answer's head: a long download's body is not in it.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// The Prometheus text, the queue's gauges first brought up to date.
async fn render(state: &AppState) -> Response {
    let Some(handle) = state.metrics() else {
        return crate::error::not_found().await.into_response();
    };
    if let Err(e) = state.service().record_queue_metrics().await {
        tracing::warn!(error = %e, "cannot read the queue for its metrics");
    }
    let text = handle.render();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// `GET /metrics` on the main address: the admin's token.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operators",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format (version 0.0.4)", content_type = "text/plain",
         body = String, example = json!("# TYPE chat_queue_length gauge\nchat_queue_length 3\n")),
        (status = 401, description = "No token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not the admin's token", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn metrics_route(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> Result<Response, ApiError> {
    state.service().may_operate(&actor)?;
    Ok(render(&state).await)
}

/// The router of `--metrics-bind`: `GET /metrics` without a token, and nothing else.
pub fn bind_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { render(&state).await }),
        )
        .with_state(state)
}

/// Serves [`bind_router`] on `listener` (`--metrics-bind`) under the same connection
/// timeouts and caps as the main address (a cap of its own, so that scrapers and clients
/// never crowd each other out), until `shutdown` resolves or the server's shutdown starts.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let stopping = state.shutdown().clone();
    let ended = {
        let stopping = stopping.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = stopping.triggered() => {}
            }
        }
    };
    crate::conn::serve(
        listener,
        bind_router(state.clone()),
        state.connections(),
        std::sync::Arc::new(crate::conn::Caps::new(
            state.connections(),
            state.limits().settings(),
        )),
        &stopping,
        ended,
    )
    .await;
}
