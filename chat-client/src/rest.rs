//! [`Client`]: the contract's REST API (docs/API.md, "REST"), one method per endpoint,
//! answering chatcore's types (which are the contract's shapes) or an [`Error`].

use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Availability, Chat, ChatsFilter, CustomerSession, Message, Officer, OfficerSession, ReadMark,
};
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ApiError, Error, chain, transport};
use crate::ws::{Identity, Socket, SocketOptions};

/// A client of one server, with or without a session token. Cloning is cheap and shares
/// the connection pool; [`Client::with_token`] gives the same server another identity.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    token: Option<Arc<str>>,
    socket: SocketOptions,
    timeouts: Timeouts,
    /// The TLS configuration of `https` and `wss`, made once (tls.rs).
    tls: Arc<rustls::ClientConfig>,
}

/// A request's deadline and a connect's.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    request: Duration,
    connect: Duration,
}

impl Timeouts {
    fn http_client(self, base: &str, tls: &rustls::ClientConfig) -> Result<reqwest::Client, Error> {
        reqwest::Client::builder()
            .connect_timeout(self.connect)
            .timeout(self.request)
            .tcp_nodelay(true)
            .tls_backend_preconfigured(tls.clone())
            .build()
            .map_err(|e| Error::Unreachable {
                url: base.to_string(),
                reason: chain(&e),
            })
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// How to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    token: Option<String>,
    timeouts: Timeouts,
    socket: SocketOptions,
    ca_pem: Vec<Vec<u8>>,
}

impl ClientBuilder {
    /// Session token sent as `Authorization: Bearer` (and in the WebSocket's `auth`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Deadline of a whole request (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request = timeout;
        self
    }

    /// Deadline of a TCP connect (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Small WebSocket buffers (4 KiB read, no write buffer): for a process that holds
    /// thousands of sockets with small frames, such as a load tool.
    pub fn small_socket_buffers(mut self) -> Self {
        self.socket.small_buffers = true;
        self
    }

    /// Trusts the CA certificates in `pem` (PEM, one or more) for `https` and `wss`, as
    /// well as the system's (rustls-native-certs: `/etc/ssl/certs`, or `SSL_CERT_FILE`
    /// and `SSL_CERT_DIR`): for a server whose certificate a private CA signed. May be
    /// given more than once. [`ClientBuilder::build`] refuses a `pem` that holds no
    /// certificate ([`Error::Tls`]). A server's certificate is always verified.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem.push(pem.into());
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let base = normalize(&self.base);
        let tls = crate::tls::config(&self.ca_pem).map_err(|reason| Error::Tls {
            url: base.clone(),
            reason: format!("the CA certificates given: {reason}"),
        })?;
        Ok(Client {
            http: self.timeouts.http_client(&base, &tls)?,
            base: base.into(),
            token: self.token.map(Into::into),
            socket: self.socket,
            timeouts: self.timeouts,
            tls,
        })
    }
}

/// `host:port` or `http://host:port/` -> `http://host:port`.
fn normalize(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.contains("://") {
        base.to_string()
    } else {
        format!("http://{base}")
    }
}

/// Percent-encodes one path segment, so that an id with a `/` or `?` stays one segment
/// and the server, not the URL parser, judges it.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page of a chat's messages: `after` and `before` are exclusive seq bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// Messages with a greater seq.
    pub after: Option<u64>,
    /// Messages with a smaller seq (the newest `limit` of them).
    pub before: Option<u64>,
    /// At most this many (the server's default 100, at most 1,000).
    pub limit: Option<u32>,
}

impl Page {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = self.after {
            parts.push(format!("after={a}"));
        }
        if let Some(b) = self.before {
            parts.push(format!("before={b}"));
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// A sent message, and whether this call stored it (false: an earlier send with the same
/// `clientMessageId` did, and this is that message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The stored message.
    pub message: Message,
    /// 201 (true) or 200 (false).
    pub created: bool,
}

/// How long an upload or a download may take in all (a large file on a slow link).
const FILE_TIMEOUT: Duration = Duration::from_secs(3600);

/// An open download ([`Client::download`]).
#[derive(Debug)]
pub struct Download {
    /// 200 (the whole file) or 206 (a range).
    pub status: u16,
    /// The file's type as the server serves it.
    pub content_type: Option<String>,
    /// `Content-Disposition` (`attachment; filename=...; filename*=UTF-8''...`).
    pub disposition: Option<String>,
    /// Bytes the body holds.
    pub length: Option<u64>,
    /// The answer, its body not yet read.
    pub response: reqwest::Response,
}

fn retry_after_of(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A refusal from its status and body (the contract's error object when there is one).
fn refusal(status: StatusCode, retry_after: Option<u64>, bytes: &[u8]) -> Error {
    let body = serde_json::from_slice::<ErrorBody>(bytes).ok();
    let (code, message) = match body {
        Some(b) => (b.error.code, b.error.message),
        None => (
            format!("http_{}", status.as_u16()),
            format!("the server answered HTTP {status}"),
        ),
    };
    Error::Api(ApiError {
        status: Some(status.as_u16()),
        code,
        message,
        retry_after,
    })
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`, `https://host`, or
    /// `host:port`). `https` trusts the system's CA roots; [`ClientBuilder::ca_pem`] adds
    /// more.
    pub fn new(base: &str) -> Result<Self, Error> {
        Self::builder(base).build()
    }

    /// How to build one, with options.
    pub fn builder(base: &str) -> ClientBuilder {
        ClientBuilder {
            base: base.to_string(),
            token: None,
            timeouts: Timeouts {
                request: Duration::from_secs(60),
                connect: Duration::from_secs(5),
            },
            socket: SocketOptions::default(),
            ca_pem: Vec::new(),
        }
    }

    /// The same server and connection pool, acting with `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into().into()),
            ..self.clone()
        }
    }

    /// The same server and options on a connection pool of its own (a load tool's
    /// worker that must not share connections).
    pub fn with_own_connections(&self) -> Result<Self, Error> {
        Ok(Self {
            http: self.timeouts.http_client(&self.base, &self.tls)?,
            ..self.clone()
        })
    }

    /// The same options and token on another node of the deployment.
    pub fn at(&self, base: &str) -> Self {
        Self {
            base: normalize(base).into(),
            ..self.clone()
        }
    }

    /// The server's base URL, normalized (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The session token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The HTTP client underneath, for requests outside the contract (timing, raw
    /// bodies).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A reqwest builder that speaks TLS as this client does (its rustls configuration:
    /// ring, its CA roots), for an HTTP client of one's own with other options (a local
    /// address, no pool). This crate builds reqwest without a crypto provider of its own
    /// (not aws-lc-rs), so in a process whose reqwest has no other TLS feature a bare
    /// `reqwest::Client::new()` panics for want of one: start from here instead.
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_backend_preconfigured((*self.tls).clone())
    }

    fn require_token(&self) -> Result<&str, Error> {
        self.token.as_deref().ok_or(Error::NoToken)
    }

    /// One request, with the token when `auth`; a 2xx body decoded as `T`, with its
    /// status.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: bool,
    ) -> Result<(StatusCode, T), Error> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if auth {
            request = request.bearer_auth(self.require_token()?);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| transport(&url, &e);
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(refusal(status, retry_after, &bytes));
        }
        // A 204 has no body: read it as JSON null.
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        let value = serde_json::from_slice(bytes).map_err(|e| Error::BadResponse {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok((status, value))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        Ok(self.call(Method::GET, path, None, true).await?.1)
    }

    /// `GET /`: what the server says of itself (pages, modes).
    pub async fn server_info(&self) -> Result<Value, Error> {
        Ok(self.call(Method::GET, "/", None, false).await?.1)
    }

    /// `GET /healthz`: `Ok` when the server and its store answer.
    pub async fn health(&self) -> Result<(), Error> {
        let _: Value = self.call(Method::GET, "/healthz", None, false).await?.1;
        Ok(())
    }

    /// `POST /api/officers`: creates an officer (the admin; anyone in open mode, so the
    /// token is sent only when the client has one).
    pub async fn create_officer(
        &self,
        id: &str,
        password: Option<&str>,
        display_name: Option<&str>,
    ) -> Result<Officer, Error> {
        let mut body = json!({ "id": id });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        if let Some(n) = display_name {
            body["displayName"] = json!(n);
        }
        let auth = self.token.is_some();
        Ok(self
            .call(Method::POST, "/api/officers", Some(body), auth)
            .await?
            .1)
    }

    /// `GET /api/officers`: every officer, by id (officers and the admin; contract
    /// version 2, so a version 1 server answers 404).
    pub async fn officers(&self) -> Result<Vec<Officer>, Error> {
        self.get("/api/officers").await
    }

    /// `POST /api/officers/{id}/disable` or `/enable` (the admin).
    pub async fn set_officer_disabled(&self, id: &str, disabled: bool) -> Result<Officer, Error> {
        let action = if disabled { "disable" } else { "enable" };
        let path = format!("/api/officers/{}/{action}", segment(id));
        Ok(self.call(Method::POST, &path, None, true).await?.1)
    }

    /// `PUT /api/officers/{id}/capacity` (the admin): the most open chats the officer
    /// may hold, `None` for the server's default. 409 `at_capacity` is what a claim past
    /// it gets.
    pub async fn set_capacity(&self, id: &str, capacity: Option<u32>) -> Result<Officer, Error> {
        let path = format!("/api/officers/{}/capacity", segment(id));
        let body = json!({ "capacity": capacity });
        Ok(self.call(Method::PUT, &path, Some(body), true).await?.1)
    }

    /// `PUT /api/officers/{id}/availability`: whether the officer takes chats now (that
    /// officer, the admin).
    pub async fn set_availability(
        &self,
        id: &str,
        availability: Availability,
    ) -> Result<Officer, Error> {
        let path = format!("/api/officers/{}/availability", segment(id));
        let body = json!({ "availability": availability.as_str() });
        Ok(self.call(Method::PUT, &path, Some(body), true).await?.1)
    }

    /// `POST /api/officers/login`.
    pub async fn officer_login(
        &self,
        id: &str,
        password: Option<&str>,
    ) -> Result<OfficerSession, Error> {
        let mut body = json!({ "officerId": id });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        Ok(self
            .call(Method::POST, "/api/officers/login", Some(body), false)
            .await?
            .1)
    }

    /// `POST /api/customers/login` by id: with the host's `signature` on a server with a
    /// customer secret; `officer` names the officer a new chat goes to (open servers).
    pub async fn customer_login(
        &self,
        customer: &str,
        officer: Option<&str>,
        signature: Option<&str>,
    ) -> Result<CustomerSession, Error> {
        let mut body = json!({ "customerId": customer });
        if let Some(o) = officer {
            body["officerId"] = json!(o);
        }
        if let Some(s) = signature {
            body["signature"] = json!(s);
        }
        Ok(self
            .call(Method::POST, "/api/customers/login", Some(body), false)
            .await?
            .1)
    }

    /// `POST /api/customers/login` with an identity token (a JWT the host signed:
    /// `chatcore::customer_identity_token`).
    pub async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> Result<CustomerSession, Error> {
        let body = json!({ "identityToken": identity_token });
        Ok(self
            .call(Method::POST, "/api/customers/login", Some(body), false)
            .await?
            .1)
    }

    /// `POST /api/logout`: revokes the client's token (its WebSockets close with 4401).
    pub async fn logout(&self) -> Result<(), Error> {
        let _: Value = self.call(Method::POST, "/api/logout", None, true).await?.1;
        Ok(())
    }

    /// `GET /api/officers/queue`: pending chats, oldest first.
    pub async fn queue(&self) -> Result<Vec<Chat>, Error> {
        self.get("/api/officers/queue").await
    }

    /// `GET /api/customers/{customer}/chats`: a customer's chats, newest first (that
    /// customer, officers, the admin).
    pub async fn customer_chats(&self, customer: &str) -> Result<Vec<Chat>, Error> {
        self.get(&format!("/api/customers/{}/chats", segment(customer)))
            .await
    }

    /// `GET /api/officers/{officer}/chats?status=`: their open chats, resolved ones or
    /// both, newest activity first.
    pub async fn officer_chats(
        &self,
        officer: &str,
        status: ChatsFilter,
    ) -> Result<Vec<Chat>, Error> {
        self.get(&format!(
            "/api/officers/{}/chats?status={}",
            segment(officer),
            status.as_str()
        ))
        .await
    }

    /// `POST /api/officers/{officer}/claim/{chat}`: 409 `already_assigned` when another
    /// officer won.
    pub async fn claim(&self, officer: &str, chat: &str) -> Result<Chat, Error> {
        let path = format!("/api/officers/{}/claim/{}", segment(officer), segment(chat));
        Ok(self.call(Method::POST, &path, None, true).await?.1)
    }

    /// `POST /api/chats/{chat}/resolve`: ends the chat (its officer, its customer, the
    /// admin); a resolved chat is answered as it is.
    pub async fn resolve(&self, chat: &str) -> Result<Chat, Error> {
        self.lifecycle(chat, "resolve", None).await
    }

    /// `POST /api/chats/{chat}/release`: back to the queue (its officer, the admin).
    pub async fn release(&self, chat: &str) -> Result<Chat, Error> {
        self.lifecycle(chat, "release", None).await
    }

    /// `POST /api/chats/{chat}/transfer` to `officer` (its officer, the admin).
    pub async fn transfer(&self, chat: &str, officer: &str) -> Result<Chat, Error> {
        self.lifecycle(chat, "transfer", Some(json!({ "officerId": officer })))
            .await
    }

    /// `POST /api/chats/{chat}/reopen`: an officer for themselves (`officer` `None`), the
    /// admin for the officer named.
    pub async fn reopen(&self, chat: &str, officer: Option<&str>) -> Result<Chat, Error> {
        let body = officer.map(|o| json!({ "officerId": o }));
        self.lifecycle(chat, "reopen", body).await
    }

    /// `POST /api/chats/{chat}/read`: the caller (the chat's customer or officer) has
    /// seen its entries up to `seq`; the mark as it now is (it only moves forward).
    pub async fn mark_read(&self, chat: &str, seq: u64) -> Result<ReadMark, Error> {
        let path = format!("/api/chats/{}/read", segment(chat));
        Ok(self
            .call(Method::POST, &path, Some(json!({ "seq": seq })), true)
            .await?
            .1)
    }

    async fn lifecycle(
        &self,
        chat: &str,
        action: &str,
        body: Option<Value>,
    ) -> Result<Chat, Error> {
        let path = format!("/api/chats/{}/{action}", segment(chat));
        Ok(self.call(Method::POST, &path, body, true).await?.1)
    }

    /// `GET /api/chats/{chat}`.
    pub async fn chat(&self, chat: &str) -> Result<Chat, Error> {
        self.get(&format!("/api/chats/{}", segment(chat))).await
    }

    /// `POST /api/chats/{chat}/messages`. A repeated `client_message_id` stores nothing
    /// and answers the original message (`created: false`).
    pub async fn send(
        &self,
        chat: &str,
        content: &str,
        client_message_id: Option<&str>,
    ) -> Result<Sent, Error> {
        let mut body = json!({ "content": content });
        if let Some(k) = client_message_id {
            body["clientMessageId"] = json!(k);
        }
        let path = format!("/api/chats/{}/messages", segment(chat));
        let (status, message) = self.call(Method::POST, &path, Some(body), true).await?;
        Ok(Sent {
            message,
            created: status == StatusCode::CREATED,
        })
    }

    /// `GET /api/chats/{chat}/messages`: one page, ascending by seq. A page shorter than
    /// its limit is not the end (the server caps a page's bytes): page on until empty,
    /// or use [`Client::all_messages`].
    pub async fn messages(&self, chat: &str, page: Page) -> Result<Vec<Message>, Error> {
        self.get(&format!(
            "/api/chats/{}/messages{}",
            segment(chat),
            page.query()
        ))
        .await
    }

    /// Every message of a chat with a seq over `after`, paged 1,000 at a time.
    pub async fn messages_after(&self, chat: &str, after: u64) -> Result<Vec<Message>, Error> {
        let mut all: Vec<Message> = Vec::new();
        loop {
            let page = Page {
                after: Some(all.last().map_or(after, |m| m.seq)),
                limit: Some(1000),
                ..Page::default()
            };
            let batch = self.messages(chat, page).await?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend(batch);
        }
    }

    /// Every message of a chat.
    pub async fn all_messages(&self, chat: &str) -> Result<Vec<Message>, Error> {
        self.messages_after(chat, 0).await
    }

    /// The seq of a chat's newest message (0 when it has none): where a watch that
    /// starts "now" rejoins from.
    pub async fn last_seq(&self, chat: &str) -> Result<u64, Error> {
        let newest = self
            .messages(
                chat,
                Page {
                    before: Some(i64::MAX as u64),
                    limit: Some(1),
                    ..Page::default()
                },
            )
            .await?;
        Ok(newest.last().map_or(0, |m| m.seq))
    }

    /// `POST /api/chats/{chat}/attachments?name=`: sends a file, its bytes streamed from
    /// `body` (a [`reqwest::Body`]: from a file with `reqwest::Body::wrap_stream`, or
    /// bytes), with its `Content-Type` when given. A repeated `client_message_id` stores
    /// nothing and answers the original message (`created: false`). Refusals include
    /// `attachment_too_large` (413), `unsupported_type` (415), `rate_limited` (429).
    pub async fn upload(
        &self,
        chat: &str,
        name: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
        client_message_id: Option<&str>,
    ) -> Result<Sent, Error> {
        let mut url = format!(
            "{}/api/chats/{}/attachments?name={}",
            self.base,
            segment(chat),
            segment(name)
        );
        if let Some(key) = client_message_id {
            url.push_str(&format!("&clientMessageId={}", segment(key)));
        }
        let mut request = self
            .http
            .post(&url)
            .bearer_auth(self.require_token()?)
            .timeout(FILE_TIMEOUT)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let unreachable = |e: reqwest::Error| transport(&url, &e);
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = retry_after_of(&response);
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(refusal(status, retry_after, &bytes));
        }
        let message = serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Sent {
            message,
            created: status == StatusCode::CREATED,
        })
    }

    /// `GET /api/attachments/{id}`: opens a download, all of the file or, with `range`
    /// (`(first, last)`, inclusive, `None` for the end), part of it. The answer's body
    /// is read as it comes ([`Download::response`]'s `chunk` or `bytes_stream`).
    pub async fn download(
        &self,
        id: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Download, Error> {
        let url = format!("{}/api/attachments/{}", self.base, segment(id));
        let mut request = self
            .http
            .get(&url)
            .bearer_auth(self.require_token()?)
            .timeout(FILE_TIMEOUT);
        if let Some((first, last)) = range {
            let last = last.map(|l| l.to_string()).unwrap_or_default();
            request = request.header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
        }
        let response = request.send().await.map_err(|e| transport(&url, &e))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after_of(&response);
            let bytes = response.bytes().await.map_err(|e| transport(&url, &e))?;
            return Err(refusal(status, retry_after, &bytes));
        }
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Download {
            status: status.as_u16(),
            content_type: header(reqwest::header::CONTENT_TYPE),
            disposition: header(reqwest::header::CONTENT_DISPOSITION),
            length: response.content_length(),
            response,
        })
    }

    // Webhooks (the admin's; docs/API.md, "Webhooks").

    /// `POST /api/webhooks`: a new webhook for `url` (the admin), with `secret` (or a
    /// generated one) and the `events` it receives (`None`: all). The answer holds the
    /// secret, this once.
    pub async fn create_webhook(
        &self,
        url: &str,
        secret: Option<&str>,
        events: Option<&[String]>,
    ) -> Result<chatcore::CreatedWebhook, Error> {
        let body = json!({ "url": url, "secret": secret, "events": events });
        Ok(self
            .call(Method::POST, "/api/webhooks", Some(body), true)
            .await?
            .1)
    }

    /// `GET /api/webhooks`: every webhook with its pending and dead deliveries.
    pub async fn webhooks(&self) -> Result<Vec<chatcore::Webhook>, Error> {
        self.get("/api/webhooks").await
    }

    /// `DELETE /api/webhooks/{id}`: a webhook and its deliveries.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/webhooks/{}", segment(id));
        let _: Value = self.call(Method::DELETE, &path, None, true).await?.1;
        Ok(())
    }

    /// `GET /api/webhooks/deliveries`: pending (or `dead`) deliveries with a record of
    /// their own (chat changes, messages whose delivery failed; a webhook's `pending`
    /// also counts the messages not attempted yet), in the order of their records, of one webhook or
    /// all, after a delivery id, at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        dead: bool,
        webhook: Option<&str>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<chatcore::WebhookDelivery>, Error> {
        let mut path = format!(
            "/api/webhooks/deliveries?state={}",
            if dead { "dead" } else { "pending" }
        );
        if let Some(id) = webhook {
            path.push_str(&format!("&webhookId={}", segment(id)));
        }
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        self.get(&path).await
    }

    /// `POST /api/webhooks/retry`: dead deliveries pending again (all, a webhook's, or
    /// one); how many.
    pub async fn retry_webhook_deliveries(
        &self,
        webhook: Option<&str>,
        delivery: Option<i64>,
    ) -> Result<u64, Error> {
        let body = json!({ "webhookId": webhook, "deliveryId": delivery });
        let answer: Value = self
            .call(Method::POST, "/api/webhooks/retry", Some(body), true)
            .await?
            .1;
        Ok(answer["retried"].as_u64().unwrap_or(0))
    }

    /// `GET /api/me`: who the client's token is (role, subject, and an officer's record).
    pub async fn me(&self) -> Result<chatcore::Me, Error> {
        self.get("/api/me").await
    }

    /// Opens a WebSocket and authenticates with the client's token.
    pub async fn connect(&self) -> Result<Socket, Error> {
        Socket::open(&self.base, self.require_token()?, &self.socket, &self.tls).await
    }

    /// Who the client's token belongs to (the WebSocket's `ready` frame: the contract's
    /// "who am I" until `GET /api/me`).
    pub async fn whoami(&self) -> Result<Identity, Error> {
        let socket = self.connect().await?;
        let identity = socket.identity().clone();
        socket.close().await;
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_normalized_and_segments_encoded() {
        assert_eq!(normalize("127.0.0.1:3001/"), "http://127.0.0.1:3001");
        assert_eq!(normalize("https://chat.example"), "https://chat.example");
        assert_eq!(segment("alice.b_c-1"), "alice.b_c-1");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn pages_become_query_strings() {
        assert_eq!(Page::default().query(), "");
        let page = Page {
            after: Some(3),
            limit: Some(10),
            ..Page::default()
        };
        assert_eq!(page.query(), "?after=3&limit=10");
    }
}
