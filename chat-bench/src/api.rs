//! What the scenarios need of the contract beyond `chat_client`, which does the talking:
//! the bench's own officers and customers (one password, identity tokens when the
//! customer secret is known), answers as load loops count them (a status, not an
//! error), and a timed GET that reads the server's `Server-Timing`. It holds no load
//! logic; scenarios drive it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{Chat, Client, CustomerSession, Error, Message};
use serde_json::Value;

/// Password of every officer the bench creates (the server's minimum is 8 characters).
pub(crate) const BENCH_PASSWORD: &str = "bench-password-1";

/// A timed GET: status, body size, items when the body is a JSON array, and the
/// server's own duration when it sent a `Server-Timing` header.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) server_ms: Option<f64>,
    pub(crate) bytes: usize,
    pub(crate) body: Value,
}

/// One server as the bench uses it: a client acting as the admin when the admin token
/// is known, and the customer secret when it is.
#[derive(Clone)]
pub(crate) struct Api {
    admin: Client,
    customer_secret: Option<Arc<[u8]>>,
}

impl Api {
    pub(crate) fn new(
        base: &str,
        admin_token: Option<String>,
        customer_secret: Option<String>,
    ) -> anyhow::Result<Self> {
        // Small socket buffers: a scenario holds up to tens of thousands of sockets.
        let mut builder = Client::builder(base).small_socket_buffers();
        if let Some(token) = admin_token {
            builder = builder.token(token);
        }
        Ok(Self {
            admin: builder.build()?,
            customer_secret: customer_secret.map(|s| s.into_bytes().into()),
        })
    }

    /// The same server on a connection pool of its own, so that a worker holds its own
    /// connection.
    pub(crate) fn own_connection(&self) -> anyhow::Result<Self> {
        Ok(Self {
            admin: self.admin.with_own_connections()?,
            ..self.clone()
        })
    }

    /// The same secrets and connection pool on another node of the deployment.
    pub(crate) fn on(&self, base: &str) -> Self {
        Self {
            admin: self.admin.at(base),
            ..self.clone()
        }
    }

    pub(crate) fn base(&self) -> &str {
        self.admin.base()
    }

    /// The client acting as the admin (with the admin token, when known).
    pub(crate) fn admin(&self) -> &Client {
        &self.admin
    }

    /// A client of this server (its connection pool) acting with `token`.
    pub(crate) fn as_user(&self, token: &str) -> Client {
        self.admin.with_token(token)
    }

    /// What the server says of itself (`GET /`).
    pub(crate) async fn index(&self) -> Result<Value, Error> {
        self.admin.server_info().await
    }

    /// Creates an officer with [`BENCH_PASSWORD`] and logs them in: a client acting as
    /// them.
    pub(crate) async fn new_officer(&self, id: &str) -> anyhow::Result<Client> {
        self.admin
            .create_officer(id, Some(BENCH_PASSWORD), None)
            .await
            .with_context(|| format!("creating officer {id}"))?;
        self.officer_login(id, BENCH_PASSWORD).await
    }

    /// Logs an officer in: a client acting as them.
    pub(crate) async fn officer_login(&self, id: &str, password: &str) -> anyhow::Result<Client> {
        let session = self
            .admin
            .officer_login(id, Some(password))
            .await
            .with_context(|| format!("logging officer {id} in"))?;
        Ok(self.as_user(&session.token))
    }

    /// Logs a customer in: their chat, new (assigned to `officer` when given) or
    /// existing, and a token. When the customer secret is known, with an identity token
    /// (a secured server takes the officer only from its claim), else by id.
    pub(crate) async fn customer_login(
        &self,
        customer: &str,
        officer: Option<&str>,
    ) -> anyhow::Result<CustomerSession> {
        let session = match &self.customer_secret {
            Some(secret) => {
                let now = chatcore::Timestamp::now().unix_millis() / 1000;
                let claims = chatcore::IdentityClaims {
                    sub: customer.to_string(),
                    exp: u64::try_from(now + 300).unwrap_or(u64::MAX),
                    officer_id: officer.map(str::to_string),
                    name: None,
                };
                let token = chatcore::customer_identity_token(secret, &claims);
                self.admin.customer_login_with_identity(&token).await
            }
            None => self.admin.customer_login(customer, officer, None).await,
        };
        session.with_context(|| format!("logging customer {customer} in"))
    }
}

/// Sends a message as a load loop counts it: the status (201 stored, 200 the repeat of
/// an earlier send, or the refusal's status) and, for a 2xx, the stored message. Only a
/// send with no answer is an error.
pub(crate) async fn send(
    client: &Client,
    chat: &str,
    content: &str,
    client_message_id: &str,
) -> Result<(u16, Option<Message>), Error> {
    match client.send(chat, content, Some(client_message_id)).await {
        Ok(sent) => Ok((if sent.created { 201 } else { 200 }, Some(sent.message))),
        Err(e) => match e.status() {
            Some(status) => Ok((status, None)),
            None => Err(e),
        },
    }
}

/// A claim as a load loop counts it: the status (200 won, 409 lost) and the chat when
/// won. Only a claim with no answer is an error.
pub(crate) async fn claim(
    client: &Client,
    officer: &str,
    chat: &str,
) -> Result<(u16, Option<Chat>), Error> {
    match client.claim(officer, chat).await {
        Ok(chat) => Ok((200, Some(chat))),
        Err(e) => match e.status() {
            Some(status) => Ok((status, None)),
            None => Err(e),
        },
    }
}

/// A GET with the client's token, timed from before the request to the end of the
/// body, with the server's `Server-Timing` duration when it sends one. Any status is
/// an answer.
pub(crate) async fn timed_get(client: &Client, path: &str) -> anyhow::Result<Timed> {
    let start = Instant::now();
    let mut request = client.http().get(format!("{}{path}", client.base()));
    if let Some(token) = client.token() {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("GET {path}: no answer"))?;
    let status = response.status().as_u16();
    let server_ms = response
        .headers()
        .get_all("server-timing")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(server_timing_ms);
    let bytes = response.bytes().await.context("reading the answer")?;
    let elapsed = start.elapsed();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Timed {
        status,
        elapsed,
        server_ms,
        bytes: bytes.len(),
        body,
    })
}

/// The `dur` of a `Server-Timing` header value such as `app;dur=0.412`.
pub(crate) fn server_timing_ms(header: &str) -> Option<f64> {
    header.split(',').find_map(|metric| {
        metric
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("dur="))
            .and_then(|d| d.parse().ok())
    })
}

/// A short random id part, so that every run creates fresh officers and customers.
pub(crate) fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_values_parse() {
        assert_eq!(server_timing_ms("app;dur=0.412"), Some(0.412));
        assert_eq!(
            server_timing_ms("db;desc=\"x\";dur=3, app;dur=5"),
            Some(3.0)
        );
        assert_eq!(server_timing_ms("app"), None);
    }
}
