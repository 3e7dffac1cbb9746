//! The webhooks' HTTP requests: [`HttpSender`], chatcore's `WebhookSender` on reqwest.
//! It only carries: what to send, when, signed how and retried how is the engine's
//! (`chatcore::service` webhooks). It never follows a redirect, gives up at the
//! request's timeout, reads at most [`MAX_RESPONSE_BYTES`] of an answer (to keep the
//! connection for the next request) and logs nothing: the engine logs the outcome
//! without the URL's query or the secret.

use std::time::Duration;

use async_trait::async_trait;
use chatcore::webhooks::SIGNATURE_HEADER;
use chatcore::{WebhookRequest, WebhookResponse, WebhookSender};

/// The URL schemes this build sends to (reqwest here has no TLS; put a TLS-speaking
/// egress proxy in front of an `https` receiver: docs/DEPLOY.md).
pub const SCHEMES: &[&str] = &["http"];

/// Most bytes of a receiver's answer read (the rest is dropped with the connection).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends webhook requests over one pooled HTTP client.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    /// A sender with no redirects, no proxy from the environment, and idle
    /// connections kept for a while per receiver.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("chat-http-webhooks/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { client })
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, request: WebhookRequest) -> WebhookResponse {
        let attempt = self
            .client
            .post(&request.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, &request.signature)
            .header("chat-event-id", &request.event_id)
            .header("chat-event-type", &request.kind)
            .body(request.body.clone())
            .send();
        let mut response = match tokio::time::timeout(request.timeout, attempt).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return WebhookResponse::Failed(describe(&e)),
            Err(_) => {
                return WebhookResponse::Failed(format!("timed out after {:?}", request.timeout));
            }
        };
        let status = response.status().as_u16();
        // The status is the answer; a little of the body is read so that the
        // connection can serve the next request, and no more than a second is spent.
        let drain = async {
            let mut read = 0;
            while read <= MAX_RESPONSE_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        WebhookResponse::Status(status)
    }
}

/// A failure in words for the operator: its kind, never the URL (which may carry a
/// token in its query).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "redirected (not followed)".into()
    } else if e.is_body() || e.is_request() {
        "the connection failed while sending".into()
    } else {
        "the request failed".into()
    }
}
