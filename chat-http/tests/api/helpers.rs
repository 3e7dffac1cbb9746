//! The one place tests talk to the server: `spawn_app` starts it, `TestApp` has one
//! method per endpoint and a WebSocket connect, so an API change touches only this file.
//! The endpoint methods are raw requests answering a [`Resp`] (tests assert statuses,
//! headers and malformed input); the happy-path conveniences (`new_officer`, `say`, ...)
//! go through the contract's client, `chat_client::Client`, on the same connections.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chat_http::{AppState, HttpLimits, WsSettings};
use chatcore::{
    ChatService, FsBlobStore, Limits, LocalBus, ManualClock, ServiceConfig, SqliteStore, Timestamp,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";
pub(crate) const CUSTOMER_SECRET: &str = "test-customer-secret-0123456789abcdef";
pub(crate) const PASSWORD: &str = "correct horse battery";
/// How long a test waits for something that should happen promptly.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

/// How to start the server.
#[derive(Clone)]
pub(crate) struct Options {
    /// Admin token and customer secret configured.
    pub(crate) secured: bool,
    pub(crate) ws: WsSettings,
    pub(crate) max_message_chars: Option<usize>,
    /// Use this database file instead of a fresh temporary one.
    pub(crate) db: Option<PathBuf>,
    pub(crate) cors_origins: Vec<String>,
    /// Listen here instead of on a free port (a restart on the same address).
    pub(crate) bind: Option<SocketAddr>,
    /// The engine's limits (default: `Limits::default()`, as embedders get it).
    pub(crate) limits: Limits,
    /// The transport's limits (default: `HttpLimits::default()`, as the binary's).
    pub(crate) http_limits: HttpLimits,
    /// Run the server on a clock the test moves by hand (`TestApp::clock`).
    pub(crate) manual_clock: bool,
    /// Lifetime of officers' and customers' tokens (default: the engine's).
    pub(crate) session_ttl: Option<Duration>,
    /// The server's default capacity for officers (`--officer-capacity`; default none).
    pub(crate) officer_capacity: Option<u32>,
    /// How chats reach officers (`--assignment`; default manual).
    pub(crate) assignment: chatcore::Assignment,
    /// How attachments are taken (default: the engine's).
    pub(crate) attachments: chatcore::AttachmentSettings,
    /// How webhooks are delivered (default: the engine's).
    pub(crate) webhooks: chatcore::WebhookSettings,
    /// Connection timeouts and caps (default: `ConnSettings::default()`).
    pub(crate) connections: Option<chat_http::ConnSettings>,
}

impl Options {
    pub(crate) fn open() -> Self {
        Self {
            secured: false,
            ws: WsSettings::default(),
            max_message_chars: None,
            db: None,
            cors_origins: Vec::new(),
            bind: None,
            limits: Limits::default(),
            http_limits: HttpLimits::default(),
            manual_clock: false,
            session_ttl: None,
            officer_capacity: None,
            assignment: chatcore::Assignment::Manual,
            attachments: chatcore::AttachmentSettings::default(),
            webhooks: chatcore::WebhookSettings::default(),
            connections: None,
        }
    }

    pub(crate) fn secured() -> Self {
        Self {
            secured: true,
            ..Self::open()
        }
    }

    /// Both modes, for tests that must hold in each.
    pub(crate) fn both() -> [Self; 2] {
        [Self::open(), Self::secured()]
    }
}

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) secured: bool,
    /// Raw requests; the same connection pool as `api`'s.
    pub(crate) client: reqwest::Client,
    /// The contract's client, without a token.
    api: chat_client::Client,
    /// The server's clock, with `Options::manual_clock`.
    pub(crate) clock: Option<Arc<ManualClock>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

/// An HTTP answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// The `Retry-After` header, in seconds, when there is one.
    pub(crate) retry_after: Option<u64>,
}

impl Resp {
    /// The contract's error code, if this is an error body.
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub(crate) fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {:?}", self.body);
        self.body
    }

    #[track_caller]
    pub(crate) fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected answer: {:?}",
            self.body
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {:?}",
            self.body
        );
    }
}

/// Starts the server in the test's own runtime, not on `chat_http::testing::TestServer`'s
/// thread: `TestApp::stop` awaits `serve` and checks that the graceful shutdown ends
/// cleanly (many tests end with it), which a server on another thread, stopped from a
/// blocking drop, cannot report; and the test's sockets keep running while it stops.
pub(crate) async fn spawn_app(options: Options) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
    let (dir, db_path) = match options.db.clone() {
        Some(path) => (None, path),
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("chat.db");
            (Some(dir), path)
        }
    };
    let mut config = ServiceConfig::default();
    if options.secured {
        config.admin_token = Some(ADMIN_TOKEN.to_string());
        config.customer_secret = Some(CUSTOMER_SECRET.as_bytes().to_vec());
    }
    if let Some(max) = options.max_message_chars {
        config.max_message_chars = max;
    }
    config.limits = options.limits.clone();
    config.officer_capacity = options.officer_capacity;
    config.assignment = options.assignment;
    config.attachments = options.attachments.clone();
    config.webhooks = options.webhooks.clone();
    if let Some(ttl) = options.session_ttl {
        config.officer_session_ttl = ttl;
        config.customer_session_ttl = ttl;
    }
    let clock = options.manual_clock.then(|| {
        Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_800_000_000_000,
        )))
    });
    if let Some(clock) = &clock {
        config.clock = clock.clone();
    }
    let store = SqliteStore::open(&db_path).expect("open store");
    let blobs = FsBlobStore::open(FsBlobStore::beside(&db_path)).expect("open attachments");
    let service = ChatService::with_blobs(
        std::sync::Arc::new(store),
        std::sync::Arc::new(blobs),
        std::sync::Arc::new(LocalBus::new()),
        config,
    );
    let mut state = AppState::builder(service)
        .ws(options.ws.clone())
        .cors_origins(options.cors_origins.clone())
        .limits(options.http_limits.clone());
    if let Some(connections) = &options.connections {
        state = state.connections(connections.clone());
    }
    let state = state.build();
    let bind = options
        .bind
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(chat_http::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let api = chat_client::Client::builder(&format!("http://{addr}"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    TestApp {
        addr,
        secured: options.secured,
        client: api.http().clone(),
        api,
        clock,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers the graceful shutdown and waits for `serve` to return.
    pub(crate) async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(20), server)
                .await
                .expect("serve did not return after shutdown")
                .expect("serve panicked");
            result.expect("serve failed");
        }
    }

    /// Any request; the body is sent as JSON when given.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        into_resp(req.send().await.expect("request failed")).await
    }

    /// A request with a raw body and content type.
    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        into_resp(req.send().await.expect("request failed")).await
    }

    // One method per endpoint.

    pub(crate) async fn health(&self) -> Resp {
        self.request(Method::GET, "/healthz", None, None).await
    }

    pub(crate) async fn create_officer(&self, token: Option<&str>, body: Value) -> Resp {
        self.request(Method::POST, "/api/officers", token, Some(&body))
            .await
    }

    pub(crate) async fn officer_login(&self, body: Value) -> Resp {
        self.request(Method::POST, "/api/officers/login", None, Some(&body))
            .await
    }

    pub(crate) async fn customer_login(&self, body: Value) -> Resp {
        self.request(Method::POST, "/api/customers/login", None, Some(&body))
            .await
    }

    pub(crate) async fn queue(&self, token: Option<&str>) -> Resp {
        self.request(Method::GET, "/api/officers/queue", token, None)
            .await
    }

    pub(crate) async fn officer_chats(&self, token: Option<&str>, officer: &str) -> Resp {
        let path = format!("/api/officers/{officer}/chats");
        self.request(Method::GET, &path, token, None).await
    }

    pub(crate) async fn claim(&self, token: Option<&str>, officer: &str, chat: &str) -> Resp {
        let path = format!("/api/officers/{officer}/claim/{chat}");
        self.request(Method::POST, &path, token, None).await
    }

    pub(crate) async fn send_message(&self, token: Option<&str>, chat: &str, body: Value) -> Resp {
        let path = format!("/api/chats/{chat}/messages");
        self.request(Method::POST, &path, token, Some(&body)).await
    }

    /// `query` without the `?`, e.g. `after=3&limit=2`.
    pub(crate) async fn messages(&self, token: Option<&str>, chat: &str, query: &str) -> Resp {
        let path = format!("/api/chats/{chat}/messages?{query}");
        self.request(Method::GET, &path, token, None).await
    }

    pub(crate) async fn chat(&self, token: Option<&str>, chat: &str) -> Resp {
        let path = format!("/api/chats/{chat}");
        self.request(Method::GET, &path, token, None).await
    }

    pub(crate) async fn logout(&self, token: &str) -> Resp {
        self.request(Method::POST, "/api/logout", Some(token), None)
            .await
    }

    /// `action` is `disable` or `enable`.
    pub(crate) async fn officer_switch(
        &self,
        token: Option<&str>,
        officer: &str,
        action: &str,
    ) -> Resp {
        let path = format!("/api/officers/{officer}/{action}");
        self.request(Method::POST, &path, token, None).await
    }

    /// `POST /api/chats/{chat}/attachments?{query}` with `bytes` as the body (`query`
    /// without the `?`, e.g. `name=a.pdf&clientMessageId=k`).
    pub(crate) async fn upload(
        &self,
        token: Option<&str>,
        chat: &str,
        query: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
    ) -> Resp {
        let path = format!("/api/chats/{chat}/attachments?{query}");
        self.raw(Method::POST, &path, token, content_type, bytes)
            .await
    }

    /// `GET /api/attachments/{id}` with these extra headers: the status, the headers
    /// and the body's bytes.
    pub(crate) async fn download(
        &self,
        token: Option<&str>,
        id: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self.client.get(self.url(&format!("/api/attachments/{id}")));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("read body").to_vec();
        (status, headers, body)
    }

    // Conveniences built on the endpoints.

    /// The admin token in secured mode, nothing in open mode.
    pub(crate) fn admin(&self) -> Option<&'static str> {
        self.secured.then_some(ADMIN_TOKEN)
    }

    /// The contract's client acting with `token`.
    fn with_token(&self, token: &str) -> chat_client::Client {
        self.api.with_token(token)
    }

    /// Creates an officer (with a password) and logs them in; returns the token.
    pub(crate) async fn new_officer(&self, id: &str) -> String {
        let admin = match self.admin() {
            Some(token) => self.with_token(token),
            None => self.api.clone(),
        };
        admin
            .create_officer(id, Some(PASSWORD), Some(&format!("Officer {id}")))
            .await
            .unwrap_or_else(|e| panic!("create officer {id}: {e}"));
        self.login_officer(id).await
    }

    pub(crate) async fn login_officer(&self, id: &str) -> String {
        self.api
            .officer_login(id, Some(PASSWORD))
            .await
            .unwrap_or_else(|e| panic!("log officer {id} in: {e}"))
            .token
    }

    /// The customer's signature in secured mode.
    pub(crate) fn signature(&self, customer: &str) -> Option<String> {
        self.secured
            .then(|| chatcore::customer_signature(CUSTOMER_SECRET.as_bytes(), customer))
    }

    /// An identity token for `customer`, signed with the customer secret, expiring
    /// `ttl_secs` from the server's now (negative: already expired).
    pub(crate) fn identity_token(
        &self,
        customer: &str,
        ttl_secs: i64,
        officer: Option<&str>,
        name: Option<&str>,
    ) -> String {
        let now_ms = match &self.clock {
            Some(clock) => chatcore::Clock::now(clock.as_ref()).unix_millis(),
            None => Timestamp::now().unix_millis(),
        };
        chatcore::customer_identity_token(
            CUSTOMER_SECRET.as_bytes(),
            &chatcore::IdentityClaims {
                sub: customer.to_string(),
                exp: u64::try_from(now_ms / 1000 + ttl_secs).unwrap(),
                officer_id: officer.map(str::to_string),
                name: name.map(str::to_string),
            },
        )
    }

    /// Logs a customer in; returns (token, chat id).
    pub(crate) async fn new_customer(&self, id: &str) -> (String, String) {
        let login = self
            .api
            .customer_login(id, None, self.signature(id).as_deref())
            .await
            .unwrap_or_else(|e| panic!("log customer {id} in: {e}"));
        (login.token, login.chat.id.to_string())
    }

    /// Sends a text and returns the stored message (a new one: 201).
    pub(crate) async fn say(&self, token: &str, chat: &str, text: &str) -> Value {
        let sent = self
            .with_token(token)
            .send(chat, text, None)
            .await
            .unwrap_or_else(|e| panic!("send to {chat}: {e}"));
        assert!(sent.created, "a message without a key is always new");
        serde_json::to_value(sent.message).expect("a message serializes")
    }

    pub(crate) async fn ws_connect(&self) -> WsClient {
        let url = format!("ws://{}/ws", self.addr);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        WsClient { stream }
    }

    /// Tries a WebSocket connection from this local address (e.g. 127.0.0.2, so that
    /// the server sees another client address); the server's refusal is the error.
    pub(crate) async fn ws_try_connect_from(
        &self,
        local: IpAddr,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(local, 0))
            .expect("bind the local address");
        let tcp = socket.connect(self.addr).await.expect("TCP connect");
        let url = format!("ws://{}/ws", self.addr);
        let (stream, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await?;
        Ok(WsClient { stream })
    }

    /// Tries a WebSocket connection whose upgrade request carries these extra headers
    /// (values as raw bytes); the server's refusal is the error.
    pub(crate) async fn ws_try_connect_with(
        &self,
        headers: &[(&'static str, &[u8])],
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        for (name, value) in headers {
            let value = reqwest::header::HeaderValue::from_bytes(value).unwrap();
            request.headers_mut().append(*name, value);
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(WsClient { stream })
    }

    /// An HTTP client whose requests come from this local address.
    pub(crate) fn client_from(local: IpAddr) -> reqwest::Client {
        http_builder()
            .local_address(local)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// Moves the server's clock (needs `Options::manual_clock`).
    pub(crate) fn advance(&self, by: Duration) {
        self.clock
            .as_ref()
            .expect("the app was started without Options::manual_clock")
            .advance(by);
    }

    /// Connects, authenticates and checks the `ready` frame.
    pub(crate) async fn ws_auth(&self, token: &str) -> WsClient {
        let mut ws = self.ws_connect().await;
        ws.send_json(json!({ "type": "auth", "token": token }))
            .await;
        let ready = ws.next_json().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn into_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    let bytes = resp.bytes().await.expect("read body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        body,
        retry_after,
    }
}

/// How a WebSocket connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A close frame with this code.
    Closed(u16),
    /// The connection dropped without a close frame.
    Dropped,
}

pub(crate) struct WsClient {
    pub(crate) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub(crate) async fn send_json(&mut self, value: Value) {
        self.send(Message::text(value.to_string())).await;
    }

    pub(crate) async fn send(&mut self, message: Message) {
        self.stream.send(message).await.expect("WebSocket send");
    }

    /// The next data frame as JSON, within [`PATIENCE`]; panics if the connection ends.
    pub(crate) async fn next_json(&mut self) -> Value {
        match self.next_json_within(PATIENCE).await {
            Some(v) => v,
            None => panic!("no frame within {PATIENCE:?}"),
        }
    }

    /// The next data frame as JSON, or `None` if nothing comes within `wait`; skips the
    /// routing's notices (`officer_updated`, `queue_position`), which come whenever an
    /// officer connects or a customer waits, and which `routing.rs` tests on their own
    /// with [`WsClient::next_any_within`].
    pub(crate) async fn next_json_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.next_any_within(left).await?;
            if !matches!(
                frame["type"].as_str(),
                Some("officer_updated" | "queue_position")
            ) {
                return Some(frame);
            }
        }
    }

    /// The next data frame (of any type) that `matches`, skipping others, within
    /// [`PATIENCE`]; panics naming `what` if none comes.
    pub(crate) async fn next_matching(
        &mut self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_any_within(left).await {
                Some(frame) if matches(&frame) => return frame,
                Some(_) => {}
                None => panic!("no {what} within {PATIENCE:?}"),
            }
        }
    }

    /// The next data frame as JSON, whatever its type, or `None` if nothing comes within
    /// `wait`.
    pub(crate) async fn next_any_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Some(
                        serde_json::from_str(text.as_str()).expect("server sent non-JSON"),
                    );
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("connection ended while waiting for a frame: {other:?}"),
            }
        }
    }

    /// Reads until the connection ends (within `wait`); returns how it ended and how many
    /// data frames came before.
    pub(crate) async fn read_until_end(&mut self, wait: Duration) -> (Ended, usize) {
        let mut frames = 0;
        let result = tokio::time::timeout(wait, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return Ended::Closed(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                    }
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => frames += 1,
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ended::Dropped,
                }
            }
        })
        .await;
        (result.expect("connection did not end in time"), frames)
    }
}

/// A reqwest builder for requests outside `chat_client` (plain `http` only: no CA root).
/// reqwest is built with rustls but no crypto provider of its own (chat-client gives it
/// a ring configuration; chat-client/Cargo.toml), so a bare `reqwest::Client::new()` or
/// `reqwest::get` panics here: every such client starts from this.
pub(crate) fn http_builder() -> reqwest::ClientBuilder {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's provider supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(tls)
}

/// A plain `http` client ([`http_builder`]'s).
pub(crate) fn http_client() -> reqwest::Client {
    http_builder().build().expect("an HTTP client")
}
