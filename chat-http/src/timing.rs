//! The optional `Server-Timing` header (`--server-timing`): how long the server took from
//! a request's arrival to its answer being ready (for JSON answers that includes
//! serializing the body; sending it is not included). For benchmarks and diagnostics,
//! so a client can tell the server's time from the network's. It measures only; it must
//! not change any answer otherwise.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub(crate) async fn server_timing(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(request).await;
    let millis = start.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.3}")) {
        response.headers_mut().append("server-timing", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use chatcore::{ChatService, LocalBus, MemoryStore, ServiceConfig};
    use tower::ServiceExt;

    use crate::AppState;

    fn state(server_timing: bool) -> AppState {
        let service = ChatService::new(
            Arc::new(MemoryStore::new()),
            Arc::new(LocalBus::new()),
            ServiceConfig::default(),
        );
        AppState::builder(service)
            .server_timing(server_timing)
            .build()
    }

    async fn header_of(state: AppState, path: &str) -> Option<String> {
        let response = crate::app(state)
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        response
            .headers()
            .get("server-timing")
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn answers_carry_the_server_time_only_when_asked() {
        for path in ["/healthz", "/api/officers/queue", "/no/such/path"] {
            let header = header_of(state(true), path)
                .await
                .expect("a Server-Timing header");
            let millis: f64 = header
                .strip_prefix("app;dur=")
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("malformed Server-Timing {header:?}"));
            assert!(millis >= 0.0, "{header}");
            assert_eq!(header_of(state(false), path).await, None);
        }
    }
}
