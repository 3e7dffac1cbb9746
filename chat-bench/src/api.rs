//! A small REST client for the wire contract (docs/API.md), just what the scenarios
//! need: create and log in officers and customers, send and page messages, read the
//! queue and an officer's chats, claim. It holds no load logic; scenarios drive it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Password of every officer the bench creates (the server's minimum is 8 characters).
pub(crate) const BENCH_PASSWORD: &str = "bench-password-1";

/// A chat as the contract returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Chat {
    pub(crate) id: String,
    pub(crate) assigned_officer_id: Option<String>,
}

/// A message as the contract returns it (the fields the scenarios check).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) seq: u64,
}

/// A customer's login answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CustomerLogin {
    pub(crate) token: String,
    pub(crate) chat: Chat,
}

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

/// The contract's REST API on one server.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    admin_token: Option<String>,
    customer_secret: Option<Vec<u8>>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .expect("a plain HTTP client builds")
}

impl Api {
    pub(crate) fn new(
        base: &str,
        admin_token: Option<String>,
        customer_secret: Option<String>,
    ) -> Self {
        Self {
            http: client(),
            base: base.trim_end_matches('/').to_string(),
            admin_token,
            customer_secret: customer_secret.map(String::into_bytes),
        }
    }

    /// The same API on a client of its own, so that a worker holds its own connection.
    pub(crate) fn own_connection(&self) -> Self {
        Self {
            http: client(),
            ..self.clone()
        }
    }

    /// The same API (secrets, client) on another node of the deployment.
    pub(crate) fn on(&self, base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request; the status and the parsed body (Null when it is not JSON).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}: no answer from {}", self.base))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Calls and requires a 2xx answer of type `T`.
    async fn expect<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let (status, value) = self.call(method.clone(), path, token, body).await?;
        if !status.is_success() {
            bail!(
                "{method} {path} answered {status}: {}",
                describe_error(&value)
            );
        }
        serde_json::from_value(value)
            .with_context(|| format!("{method} {path}: unexpected answer shape"))
    }

    /// What the server says of itself (`GET /`).
    pub(crate) async fn index(&self) -> anyhow::Result<Value> {
        self.expect(Method::GET, "/", None, None).await
    }

    /// Creates an officer with [`BENCH_PASSWORD`] (or the given password).
    pub(crate) async fn create_officer(&self, id: &str, password: &str) -> anyhow::Result<()> {
        let _: Value = self
            .expect(
                Method::POST,
                "/api/officers",
                self.admin_token.as_deref(),
                Some(json!({ "id": id, "password": password })),
            )
            .await?;
        Ok(())
    }

    /// Logs an officer in; their token.
    pub(crate) async fn officer_login(&self, id: &str, password: &str) -> anyhow::Result<String> {
        #[derive(Deserialize)]
        struct Session {
            token: String,
        }
        let session: Session = self
            .expect(
                Method::POST,
                "/api/officers/login",
                None,
                Some(json!({ "officerId": id, "password": password })),
            )
            .await?;
        Ok(session.token)
    }

    /// Creates an officer and logs them in.
    pub(crate) async fn new_officer(&self, id: &str) -> anyhow::Result<String> {
        self.create_officer(id, BENCH_PASSWORD).await?;
        self.officer_login(id, BENCH_PASSWORD).await
    }

    /// Logs a customer in: their chat, new (assigned to `officer` when given) or
    /// existing, and a token. When the customer secret is known, with an identity token
    /// (a secured server takes the officer only from its claim), else by id.
    pub(crate) async fn customer_login(
        &self,
        customer: &str,
        officer: Option<&str>,
    ) -> anyhow::Result<CustomerLogin> {
        let body = match &self.customer_secret {
            Some(secret) => {
                let now = chatcore::Timestamp::now().unix_millis() / 1000;
                let claims = chatcore::IdentityClaims {
                    sub: customer.to_string(),
                    exp: u64::try_from(now + 300).unwrap_or(u64::MAX),
                    officer_id: officer.map(str::to_string),
                    name: None,
                };
                json!({ "identityToken": chatcore::customer_identity_token(secret, &claims) })
            }
            None => {
                let mut body = json!({ "customerId": customer });
                if let Some(officer) = officer {
                    body["officerId"] = json!(officer);
                }
                body
            }
        };
        self.expect(Method::POST, "/api/customers/login", None, Some(body))
            .await
    }

    /// Sends a message; the status and, for a 2xx, the stored message. Other statuses
    /// are answers, not errors, so load loops can count them.
    pub(crate) async fn send(
        &self,
        token: &str,
        chat: &str,
        content: &str,
        client_message_id: &str,
    ) -> anyhow::Result<(u16, Option<Message>)> {
        let path = format!("/api/chats/{chat}/messages");
        let (status, value) = self
            .call(
                Method::POST,
                &path,
                Some(token),
                Some(json!({ "content": content, "clientMessageId": client_message_id })),
            )
            .await?;
        if !status.is_success() {
            return Ok((status.as_u16(), None));
        }
        let message = serde_json::from_value(value).context("POST messages: unexpected answer")?;
        Ok((status.as_u16(), Some(message)))
    }

    /// Every message of a chat, paged in pages of 1,000.
    pub(crate) async fn all_messages(
        &self,
        token: &str,
        chat: &str,
    ) -> anyhow::Result<Vec<Message>> {
        let mut all: Vec<Message> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m.seq);
            let page: Vec<Message> = self
                .expect(
                    Method::GET,
                    &format!("/api/chats/{chat}/messages?after={after}&limit=1000"),
                    Some(token),
                    None,
                )
                .await?;
            // A page may stop short at the server's byte cap: only an empty one is the end.
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// A page of messages: `query` is the query string (`after=10&limit=100`).
    pub(crate) async fn messages(
        &self,
        token: &str,
        chat: &str,
        query: &str,
    ) -> anyhow::Result<Vec<Message>> {
        self.expect(
            Method::GET,
            &format!("/api/chats/{chat}/messages?{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// A chat.
    pub(crate) async fn chat(&self, token: &str, chat: &str) -> anyhow::Result<Chat> {
        self.expect(
            Method::GET,
            &format!("/api/chats/{chat}"),
            Some(token),
            None,
        )
        .await
    }

    /// A claim; the status (200 won, 409 lost) and the chat when won.
    pub(crate) async fn claim(
        &self,
        token: &str,
        officer: &str,
        chat: &str,
    ) -> anyhow::Result<(u16, Option<Chat>)> {
        let path = format!("/api/officers/{officer}/claim/{chat}");
        let (status, value) = self.call(Method::POST, &path, Some(token), None).await?;
        if status == StatusCode::OK {
            let chat = serde_json::from_value(value).context("claim: unexpected answer")?;
            return Ok((200, Some(chat)));
        }
        Ok((status.as_u16(), None))
    }

    /// A GET timed from before the request to the end of the body, with the server's
    /// `Server-Timing` duration when it sends one.
    pub(crate) async fn timed_get(&self, token: &str, path: &str) -> anyhow::Result<Timed> {
        let start = Instant::now();
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
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

/// `code: message` of a contract error body, or the body itself.
pub(crate) fn describe_error(body: &Value) -> String {
    match (
        body["error"]["code"].as_str(),
        body["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => body.to_string(),
    }
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

    #[test]
    fn errors_are_described_by_code_and_message() {
        let body = json!({"error": {"code": "already_assigned", "message": "taken"}});
        assert_eq!(describe_error(&body), "already_assigned: taken");
        assert_eq!(describe_error(&json!("x")), "\"x\"");
    }
}
