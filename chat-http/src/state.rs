//! What every handler shares: the `ChatService`, the transport's own settings (body and
//! frame limits, WebSocket timings, connection timeouts and caps), its abuse limiters and
//! the shutdown signal. It holds no chat state of
//! its own and no rule: everything about chats lives in the service.

use std::sync::Arc;
use std::time::Duration;

use chatcore::ChatService;

use crate::branding::Branding;
use crate::conn::{Caps, ConnSettings};
use crate::limits::{Guards, HttpLimits};
use crate::shutdown::Shutdown;
use crate::webhooks::HttpSender;

/// Smallest request body limit, whatever the message limit.
const MIN_BODY_LIMIT: usize = 64 * 1024;

/// WebSocket settings. Tests shorten the timings; the defaults suit production.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsSettings {
    /// How long a new connection may take to send its `auth` frame (contract: 10 s).
    pub auth_timeout: Duration,
    /// How often the server pings; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How long a frame (an event, a reply, a ping) may wait for the client to take it
    /// before the client counts as not keeping up and is closed with 4008. Frames are
    /// written straight to the socket, one at a time, with no queue of their own: a
    /// client that reads is served at its own pace (a long replay waits on it), and
    /// while a send waits the connection's rooms are not polled (the bus keeps their
    /// events; a chat feed that lagged reads the gap from the store).
    pub slow_consumer_grace: Duration,
    /// Largest frame or message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Each connection's read buffer, allocated up front and kept for the connection's
    /// lifetime, so it is most of what an idle connection costs (tungstenite's default,
    /// 128 KiB, made an idle socket cost about 140 KiB). Every client frame of the
    /// contract fits in the default 256 bytes; a larger one, up to `max_message_bytes`,
    /// grows the buffer as needed and is read in chunks of this size.
    pub read_buffer_bytes: usize,
    /// The longest an authenticated connection goes without asking the store whether
    /// its session is still valid (it asks with a ping, so this is rounded down to whole
    /// ping intervals: every 50 s with the defaults). A logout or a disabled officer
    /// closes the connection at once through the event bus; this bounds how long a
    /// notice lost between nodes (a PostgreSQL connection that dropped) can keep it open.
    /// Expiry closes it on time regardless.
    pub session_recheck: Duration,
    /// Outgoing bytes gathered before a write to the socket; 0 writes each frame at once
    /// (each send flushes its frame anyway, so nothing builds up beyond one
    /// frame and tungstenite's `max_write_buffer_size` can stay unlimited).
    pub write_buffer_bytes: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            slow_consumer_grace: Duration::from_secs(5),
            session_recheck: Duration::from_secs(60),
            max_message_bytes: 64 * 1024,
            read_buffer_bytes: 256,
            write_buffer_bytes: 0,
        }
    }
}

/// Shared state of the router. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    service: ChatService,
    ws: WsSettings,
    cors_origins: Vec<String>,
    body_limit: usize,
    purge_interval: Duration,
    limits: Guards,
    connections: ConnSettings,
    /// The main address's connection counts, which Socket.IO's sessions share.
    caps: Arc<Caps>,
    server_timing: bool,
    branding: Branding,
    shutdown: Shutdown,
    /// The Prometheus recorder's handle (`None`: another recorder was installed).
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// What the webhooks' worker sends with (`None`: one made when `serve` starts).
    webhook_sender: Option<HttpSender>,
    /// The webhooks worker's own thread's CPU priority (`None`: on the server's runtime).
    webhook_nice: Option<u8>,
}

impl AppState {
    /// State over `service` with default WebSocket settings and no CORS origins.
    pub fn new(service: ChatService) -> Self {
        Self::builder(service).build()
    }

    /// A builder for the settings that have defaults.
    pub fn builder(service: ChatService) -> AppStateBuilder {
        AppStateBuilder {
            service,
            ws: WsSettings::default(),
            cors_origins: Vec::new(),
            purge_interval: Duration::from_secs(3600),
            limits: HttpLimits::default(),
            connections: ConnSettings::default(),
            server_timing: false,
            branding: Branding::default(),
            webhook_sender: None,
            webhook_nice: None,
        }
    }

    /// The engine.
    pub fn service(&self) -> &ChatService {
        &self.inner.service
    }

    pub(crate) fn ws(&self) -> &WsSettings {
        &self.inner.ws
    }

    pub(crate) fn cors_origins(&self) -> &[String] {
        &self.inner.cors_origins
    }

    /// Largest request body, in bytes: at least 64 KiB, and room for a message of the
    /// longest allowed content even if every character arrives as a JSON `\u` escape
    /// pair, so that such a message gets the contract's `message_too_large` rather than
    /// a body error.
    pub(crate) fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    pub(crate) fn purge_interval(&self) -> Duration {
        self.inner.purge_interval
    }

    pub(crate) fn limits(&self) -> &Guards {
        &self.inner.limits
    }

    pub(crate) fn connections(&self) -> &ConnSettings {
        &self.inner.connections
    }

    /// Open connections and Socket.IO sessions of the main address, per client address
    /// and in all, under the caps of [`ConnSettings`].
    pub(crate) fn caps(&self) -> &Arc<Caps> {
        &self.inner.caps
    }

    pub(crate) fn server_timing(&self) -> bool {
        self.inner.server_timing
    }

    /// The customer page's branding.
    pub(crate) fn branding(&self) -> &Branding {
        &self.inner.branding
    }

    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    pub(crate) fn metrics(&self) -> Option<&metrics_exporter_prometheus::PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    pub(crate) fn webhook_sender(&self) -> Option<&HttpSender> {
        self.inner.webhook_sender.as_ref()
    }

    /// The CPU priority of the webhooks worker's own thread; `None`: it runs on the
    /// server's runtime.
    pub(crate) fn webhook_nice(&self) -> Option<u8> {
        self.inner.webhook_nice
    }
}

/// Builds an [`AppState`].
pub struct AppStateBuilder {
    service: ChatService,
    ws: WsSettings,
    cors_origins: Vec<String>,
    purge_interval: Duration,
    limits: HttpLimits,
    connections: ConnSettings,
    server_timing: bool,
    branding: Branding,
    webhook_sender: Option<HttpSender>,
    webhook_nice: Option<u8>,
}

impl AppStateBuilder {
    /// WebSocket timings and limits.
    pub fn ws(mut self, ws: WsSettings) -> Self {
        self.ws = ws;
        self
    }

    /// Browser origins allowed to call the API cross-origin; none sends no CORS headers.
    pub fn cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins;
        self
    }

    /// How often expired sessions are deleted (default hourly).
    pub fn purge_interval(mut self, every: Duration) -> Self {
        self.purge_interval = every;
        self
    }

    /// The transport's abuse limits (per client address, per WebSocket connection);
    /// default [`HttpLimits::default()`]. The engine's own are in `ServiceConfig::limits`.
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Connection timeouts and caps; default [`ConnSettings::default()`]. Which peers
    /// the per-address cap exempts follows [`HttpLimits`] (`limit_loopback`,
    /// `trusted_proxies`).
    pub fn connections(mut self, connections: ConnSettings) -> Self {
        self.connections = connections;
        self
    }

    /// Whether every HTTP answer carries a `Server-Timing` header (default off).
    pub fn server_timing(mut self, on: bool) -> Self {
        self.server_timing = on;
        self
    }

    /// The customer page's branding (`--branding`); default [`Branding::default()`].
    pub fn branding(mut self, branding: Branding) -> Self {
        self.branding = branding;
        self
    }

    /// What the webhooks' worker sends with (`--webhook-ca`'s roots); default
    /// [`HttpSender::new()`], made when [`crate::serve`] starts.
    pub fn webhook_sender(mut self, sender: HttpSender) -> Self {
        self.webhook_sender = Some(sender);
        self
    }

    /// Runs the webhooks' worker on a thread of its own at CPU priority `nice` (0 to
    /// 19, as `nice(1)`: `--webhook-nice`), so that a node short of CPU serves chat
    /// traffic first; default: on the server's runtime.
    pub fn webhook_thread(mut self, nice: u8) -> Self {
        self.webhook_nice = Some(nice.min(19));
        self
    }

    /// The state.
    pub fn build(self) -> AppState {
        let max_chars = self.service.config().max_message_chars;
        let body_limit = max_chars
            .saturating_mul(12)
            .saturating_add(16 * 1024)
            .max(MIN_BODY_LIMIT);
        // The transport's limiters read the time where the engine does.
        let caps = Arc::new(Caps::new(&self.connections, &self.limits));
        let limits = Guards::new(self.limits, self.service.config().clock.clone());
        AppState {
            inner: Arc::new(Inner {
                service: self.service,
                ws: self.ws,
                cors_origins: self.cors_origins,
                body_limit,
                purge_interval: self.purge_interval.max(Duration::from_secs(1)),
                limits,
                connections: self.connections,
                caps,
                server_timing: self.server_timing,
                branding: self.branding,
                shutdown: Shutdown::new(),
                metrics: crate::metrics::recorder(),
                webhook_sender: self.webhook_sender,
                webhook_nice: self.webhook_nice,
            }),
        }
    }
}
