//! The server's settings: one clap struct, every field with a `--flag`, an env fallback
//! and a doc line that becomes `--help`, and the checks of settings that must not run
//! (open mode on a public address, short secrets). It only describes settings; it must
//! not open files (`main` reads the secret files), bind sockets or hold any rule of the
//! chat itself.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::conn::ConnSettings;
use crate::limits::HttpLimits;

mod values;
mod webhooks;

pub use values::{CountSetting, MaxConnectionsSetting, RateSetting, TimeoutSetting};
pub use webhooks::WebhookFlags;

/// REST + WebSocket server for the support chat (the wire contract in docs/API.md).
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-http", version, about)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:3001")]
    pub bind: SocketAddr,

    /// SQLite database file; created and migrated when missing. Ignored with
    /// `--database-url`.
    #[arg(long, env = "CHAT_DB", default_value = "./chat.db")]
    pub db: PathBuf,

    /// PostgreSQL connection string (`postgres://user:pass@host:5432/chat` or
    /// `host=... dbname=...`). When set, the server stores everything in PostgreSQL
    /// and shares events with every other node on the same database (LISTEN/NOTIFY),
    /// so several servers can run behind one load balancer. SQLite stays the default.
    #[arg(long, env = "CHAT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most PostgreSQL connections this node's pool opens (with `--database-url`).
    #[arg(long, env = "CHAT_DB_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// Operator's bearer token, at least 32 characters (`openssl rand -hex 32` makes
    /// one). Without it the server runs in open mode: anyone may create officers, and
    /// passwordless officers log in by id alone. A flag shows in `ps`: prefer
    /// --admin-token-file or the environment.
    #[arg(long, env = "CHAT_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (read at start; a trailing newline is ignored).
    /// Not with --admin-token.
    #[arg(
        long,
        env = "CHAT_ADMIN_TOKEN_FILE",
        value_name = "PATH",
        conflicts_with = "admin_token"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Secret shared with the host application, at least 32 characters (`openssl rand
    /// -hex 32`): customer login then requires proof of the customer id, an identity
    /// token (a JWT, HS256 with this secret) or `signature` = hex HMAC-SHA256(secret,
    /// customerId). Without it customer ids are taken on trust. Prefer
    /// --customer-secret-file or the environment.
    #[arg(long, env = "CHAT_CUSTOMER_SECRET", hide_env_values = true)]
    pub customer_secret: Option<String>,

    /// File holding the customer secret (read at start; a trailing newline is ignored).
    /// Not with --customer-secret.
    #[arg(
        long,
        env = "CHAT_CUSTOMER_SECRET_FILE",
        value_name = "PATH",
        conflicts_with = "customer_secret"
    )]
    pub customer_secret_file: Option<PathBuf>,

    /// Longest message content, in characters.
    #[arg(long, env = "CHAT_MAX_MESSAGE_CHARS", default_value_t = 4000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_message_chars: u32,

    /// The capacity of an officer who has none of their own: the most open chats a
    /// claim, transfer or reopen may give them (409 `at_capacity` past it). Unlimited
    /// when unset; the admin sets an officer's own with `PUT /api/officers/{id}/capacity`.
    #[arg(long, env = "CHAT_OFFICER_CAPACITY",
          value_parser = clap::value_parser!(u32).range(0..=i64::from(chatcore::service::MAX_CAPACITY)))]
    pub officer_capacity: Option<u32>,

    /// How chats reach officers: `manual` (they claim chats from the queue) or `auto` (a
    /// chat that enters the queue goes at once to an available, connected officer with
    /// room: the one the customer last spoke to, else the fewest open chats, else the
    /// longest since their last assignment). Officers may claim by hand in both.
    #[arg(long, env = "CHAT_ASSIGNMENT", default_value = "manual",
          value_parser = ["manual", "auto"])]
    pub assignment: String,

    /// How long a node may go unheard before the officers connected through it count as
    /// disconnected (with several nodes on one database; each node writes a heartbeat
    /// every third of it). As `30s`, `1m`, `500ms`.
    #[arg(long, env = "CHAT_PRESENCE_TTL", default_value = "30s", value_parser = presence_ttl)]
    pub presence_ttl: Duration,

    /// Most bytes of message JSON in one page of `GET /api/chats/{id}/messages`; a page
    /// stops before passing it (but holds at least one message), and the client pages on
    /// from the last seq it got. Bounds the memory one request can make the server hold.
    #[arg(long, env = "CHAT_MAX_PAGE_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_page_bytes: u64,

    /// Directory of attachments' files (content-addressed by SHA-256). Default: beside
    /// the SQLite file, named after it (`./chat.db-attachments`). Not with
    /// `--database-url`, where attachments are stored in PostgreSQL so that every node
    /// serves them.
    #[arg(long, env = "CHAT_ATTACHMENTS_DIR", value_name = "PATH")]
    pub attachments_dir: Option<PathBuf>,

    /// Bytes that must stay free on the disk of --attachments-dir (SQLite): below it,
    /// uploads are refused with 503 `unavailable`, so that files never take the space
    /// the database needs. 0 turns it off.
    #[arg(long, env = "CHAT_ATTACHMENTS_MIN_FREE", default_value_t = 1024 * 1024 * 1024)]
    pub attachments_min_free: u64,

    /// Largest attachment, in bytes (413 `attachment_too_large` past it, found from
    /// `Content-Length` or while the file streams in).
    #[arg(long, env = "CHAT_MAX_ATTACHMENT_BYTES", default_value_t = 10 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=1024 * 1024 * 1024))]
    pub max_attachment_bytes: u64,

    /// Types an attachment may be, found in its bytes (415 `unsupported_type` for
    /// others), comma-separated, among image/png, image/jpeg, image/webp, image/gif,
    /// image/tiff, application/pdf, text/plain, text/csv.
    #[arg(
        long,
        env = "CHAT_ATTACHMENT_TYPES",
        value_delimiter = ',',
        default_value = "image/png,image/jpeg,image/webp,application/pdf,text/plain"
    )]
    pub attachment_types: Vec<String>,

    /// The slowest pace an upload may keep after its first 10 seconds, in bytes a second
    /// (slower: 400 `upload_incomplete`). It bounds how long a client can hold an upload
    /// slot. 0 turns it off.
    #[arg(long, env = "CHAT_UPLOAD_MIN_RATE", default_value_t = 16 * 1024)]
    pub upload_min_rate: u64,

    /// Uploads in progress at once on this node, from everyone (over it: 429).
    #[arg(long, env = "CHAT_MAX_UPLOADS", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_uploads: u32,

    /// Uploads in progress at once by one officer or customer (over it: 429).
    #[arg(long, env = "CHAT_MAX_UPLOADS_PER_SENDER", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_uploads_per_sender: u32,

    /// How old a stored file no message points at (a crash between storing an upload's
    /// bytes and its message), or an unfinished upload's leftovers, must be before the
    /// hourly sweep (also run at start) removes it. As `1h`, `10m`, `30s`.
    #[arg(long, env = "CHAT_ATTACHMENT_ORPHAN_GRACE", default_value = "1h",
          value_parser = orphan_grace)]
    pub attachment_orphan_grace: Duration,

    /// Browser origin allowed to call the API cross-origin (repeat for several; none by
    /// default, which sends no CORS headers).
    #[arg(long = "cors-origin", env = "CHAT_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Log filter in `tracing_subscriber::EnvFilter` syntax, e.g. `info` or
    /// `chat_http=debug,info`.
    #[arg(long, env = "CHAT_LOG", default_value = "info")]
    pub log: String,

    /// Allow open mode (no admin token) on a non-loopback address. Without it, such a
    /// server refuses to start.
    #[arg(long, env = "CHAT_ALLOW_OPEN_REMOTE")]
    pub allow_open_remote: bool,

    /// Commit with SQLite `synchronous=NORMAL` instead of the default FULL: no fsync per
    /// commit, so faster where an fsync is slow, but a power loss or kernel crash may
    /// lose the last acknowledged messages (a crash of the process still loses nothing).
    #[arg(long, env = "CHAT_SYNC_NORMAL")]
    pub sync_normal: bool,

    /// fsync every commit (SQLite `synchronous=FULL`), so acknowledged writes survive
    /// power loss too. The default; still accepted so that existing scripts keep
    /// working.
    #[arg(long, env = "CHAT_SYNC_FULL")]
    pub sync_full: bool,

    /// Failed logins per officer id, as COUNT/PERIOD (`10/15m`: ten at once, then one
    /// more every 90 s; units ms, s, m, h) or `off`. Over it: 429 with Retry-After.
    #[arg(
        long,
        env = "CHAT_LIMIT_OFFICER_LOGIN_FAILURES",
        default_value = "10/15m"
    )]
    pub limit_officer_login_failures: RateSetting,

    /// Failed logins (officer passwords, customer signatures) per client address, as
    /// COUNT/PERIOD or `off`.
    #[arg(
        long,
        env = "CHAT_LIMIT_ADDRESS_LOGIN_FAILURES",
        default_value = "30/15m"
    )]
    pub limit_address_login_failures: RateSetting,

    /// Failed bearer tokens (unknown, revoked or expired; on REST and in WebSocket `auth`
    /// frames) per client address, as COUNT/PERIOD or `off`.
    #[arg(
        long,
        env = "CHAT_LIMIT_ADDRESS_TOKEN_FAILURES",
        default_value = "60/1m"
    )]
    pub limit_address_token_failures: RateSetting,

    /// Messages one officer or customer may send (whichever of their tokens they use),
    /// as COUNT/PERIOD or `off`.
    #[arg(long, env = "CHAT_LIMIT_SENDS", default_value = "30/10s")]
    pub limit_sends: RateSetting,

    /// Attachments one officer or customer may upload (each also counts as a message
    /// send), as COUNT/PERIOD or `off`.
    #[arg(long, env = "CHAT_LIMIT_UPLOADS", default_value = "20/10m")]
    pub limit_uploads: RateSetting,

    /// Attachment uploads per client address, as COUNT/PERIOD or `off`.
    #[arg(long, env = "CHAT_LIMIT_ADDRESS_UPLOADS", default_value = "60/10m")]
    pub limit_address_uploads: RateSetting,

    /// New WebSocket connections per client address, as COUNT/PERIOD or `off`.
    #[arg(long, env = "CHAT_LIMIT_WS_CONNECTS", default_value = "60/1m")]
    pub limit_ws_connects: RateSetting,

    /// Frames one WebSocket connection may send, as COUNT/PERIOD or `off`. Frames over it
    /// get a `rate_limited` error frame; as many again while refused close it with 1008.
    #[arg(long, env = "CHAT_LIMIT_WS_FRAMES", default_value = "200/10s")]
    pub limit_ws_frames: RateSetting,

    /// Rooms one WebSocket connection may have joined at once.
    #[arg(long, env = "CHAT_LIMIT_WS_ROOMS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit_ws_rooms: u32,

    /// Apply the per-address limits to loopback clients too. Off by default: a loopback
    /// peer is this machine, a local tool or a reverse proxy whose clients would all
    /// share its address (name it with --trusted-proxy instead).
    #[arg(long, env = "CHAT_LIMIT_LOOPBACK")]
    pub limit_loopback: bool,

    /// Address of a reverse proxy whose `X-Forwarded-For` names the client (repeat for
    /// several). None by default: the header is ignored and the peer is the client.
    #[arg(
        long = "trusted-proxy",
        env = "CHAT_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<IpAddr>,

    /// How long a client may take to send a complete request head (request line and
    /// headers): from the accept for a new connection, from its first byte for a later
    /// request; then the connection is closed. As `10s`, `500ms`, `1m` (units ms, s, m,
    /// h) or `off`.
    #[arg(long, env = "CHAT_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub header_read_timeout: TimeoutSetting,

    /// How long a request body may take to arrive whole, counted from the end of its head;
    /// a body still incomplete is answered 400 and its connection closed. Or `off`.
    #[arg(long, env = "CHAT_BODY_READ_TIMEOUT", default_value = "30s")]
    pub body_read_timeout: TimeoutSetting,

    /// How long a connection may wait for its next request (nothing in flight, nothing
    /// read or written) before it is closed, or `off`.
    #[arg(long, env = "CHAT_KEEP_ALIVE_TIMEOUT", default_value = "60s")]
    pub keep_alive_timeout: TimeoutSetting,

    /// How long a write to a client may make no progress (the client takes no data)
    /// before the connection is dropped, freeing what it held, or `off`. Only a pending
    /// write counts: an idle WebSocket is not affected.
    #[arg(long, env = "CHAT_WRITE_TIMEOUT", default_value = "30s")]
    pub write_timeout: TimeoutSetting,

    /// Connections one client address (IPv6: its /64) may hold open at once, WebSockets
    /// included, or `off`. Over it a new connection is closed at once. Loopback and
    /// --trusted-proxy peers are not counted (see --limit-loopback).
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_ADDRESS", default_value = "256")]
    pub max_connections_per_address: CountSetting,

    /// Connections open at once in all, or `off`; `auto`: the open-file limit - 128 -
    /// the PostgreSQL pool (+1) - 32. Over it a new connection is closed at once, except
    /// that 127.0.0.1 and ::1 may open 32 more (a health check, the operator).
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value = "auto")]
    pub max_connections: MaxConnectionsSetting,

    /// Add a `Server-Timing: app;dur=MS` header to every HTTP answer: the time from the
    /// request's arrival to its answer being ready (for benchmarks and diagnostics).
    #[arg(long, env = "CHAT_SERVER_TIMING")]
    pub server_timing: bool,

    /// JSON file with the customer page's branding: the bank's name, primary and accent
    /// colours (`#rrggbb`), a logo file, a welcome text and opening hours (docs/DEPLOY.md,
    /// "Branding the customer page"). Checked at start: a bad value stops the server.
    #[arg(long, env = "CHAT_BRANDING", value_name = "PATH")]
    pub branding: Option<PathBuf>,

    /// Webhooks (`--webhook-url`, `--webhook-secret`, the worker's timings).
    #[command(flatten)]
    pub webhooks: WebhookFlags,
    /// Also serve `GET /metrics` (Prometheus text) on this address, without a token, for
    /// a scraper on a private network; on the main address it needs the admin token.
    /// Keep it off the public interface.
    #[arg(long, env = "CHAT_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,
}

/// The sweep's grace: a duration of 1 second or more (not `off`).
fn orphan_grace(s: &str) -> Result<Duration, String> {
    match s.parse::<TimeoutSetting>()?.0 {
        Some(grace) if grace >= Duration::from_secs(1) => Ok(grace),
        _ => Err(format!("{s:?}: the grace must be 1s or more")),
    }
}

/// A presence ttl: a duration of 1 second or more (not `off`).
fn presence_ttl(s: &str) -> Result<Duration, String> {
    match s.parse::<TimeoutSetting>()?.0 {
        Some(ttl) if ttl >= Duration::from_secs(1) => Ok(ttl),
        _ => Err(format!("{s:?}: the presence ttl must be 1s or more")),
    }
}

/// Shortest admin token and customer secret accepted, in characters. Both are guessed
/// offline if short: the admin token against the server, the customer secret against a
/// captured signature or identity token (it is an HMAC key).
pub const MIN_SECRET_CHARS: usize = 32;

/// Refuses a secret that is empty or short, saying how to make a good one.
fn check_secret(flag: &str, secret: &str) -> Result<(), String> {
    let chars = secret.chars().count();
    if chars >= MIN_SECRET_CHARS {
        return Ok(());
    }
    Err(format!(
        "{flag} is {chars} characters; it must be at least {MIN_SECRET_CHARS}. Generate one \
         with `openssl rand -hex 32`, and give it with {flag}-file or the environment \
         rather than on the command line, where `ps` shows it"
    ))
}

impl Config {
    /// True when no admin token is configured.
    pub fn open_mode(&self) -> bool {
        self.admin_token.is_none()
    }

    /// Refuses settings that must not run together: open mode on a non-loopback
    /// address without the explicit override. The error is a sentence for the operator.
    pub fn check(&self) -> Result<(), String> {
        if self.open_mode() && !self.bind.ip().is_loopback() && !self.allow_open_remote {
            return Err(format!(
                "refusing to serve in open mode (no admin token) on non-loopback address {}: \
                 set --admin-token (CHAT_ADMIN_TOKEN), bind to 127.0.0.1, or pass \
                 --allow-open-remote if you really mean it",
                self.bind
            ));
        }
        if let Some(bad) = self
            .cors_origins
            .iter()
            .find(|o| axum::http::HeaderValue::from_str(o).is_err() || !o.contains("://"))
        {
            return Err(format!(
                "--cors-origin {bad:?} is not an origin like https://shop.example"
            ));
        }
        for (flag, secret) in [
            ("--admin-token", &self.admin_token),
            ("--customer-secret", &self.customer_secret),
        ] {
            if let Some(secret) = secret {
                check_secret(flag, secret)?;
            }
        }
        // A bearer token longer than the engine reads would lock the admin out.
        if let Some(token) = &self.admin_token
            && token.len() > chatcore::MAX_TOKEN_BYTES
        {
            return Err(format!(
                "--admin-token is {} bytes; a bearer token is at most {} bytes",
                token.len(),
                chatcore::MAX_TOKEN_BYTES
            ));
        }
        if matches!(&self.database_url, Some(u) if u.is_empty()) {
            return Err("--database-url must not be empty".to_string());
        }
        if self.database_url.is_some() && self.attachments_dir.is_some() {
            return Err(
                "--attachments-dir is for SQLite: with --database-url attachments are \
                        stored in PostgreSQL, where every node reads them"
                    .to_string(),
            );
        }
        chatcore::FileTypes::parse(self.attachment_types.iter().map(String::as_str))
            .map_err(|e| format!("--attachment-types: {e}"))?;
        if self.sync_normal && self.sync_full {
            return Err("--sync-normal and --sync-full contradict each other".to_string());
        }
        self.webhooks.check()?;
        Ok(())
    }

    /// The engine's settings derived from these flags.
    pub fn service_config(&self) -> chatcore::ServiceConfig {
        let mut config = chatcore::ServiceConfig::default();
        config.admin_token = self.admin_token.clone();
        config.customer_secret = self.customer_secret.as_ref().map(|s| s.as_bytes().to_vec());
        config.max_message_chars = self.max_message_chars as usize;
        config.officer_capacity = self.officer_capacity;
        config.assignment =
            chatcore::Assignment::parse(&self.assignment).unwrap_or(chatcore::Assignment::Manual);
        config.presence_ttl = self.presence_ttl;
        config.max_page_bytes = usize::try_from(self.max_page_bytes).unwrap_or(usize::MAX);
        config.limits = chatcore::Limits::default()
            .with_login_failures_per_officer(self.limit_officer_login_failures.0)
            .with_sends_per_sender(self.limit_sends.0)
            .with_uploads_per_sender(self.limit_uploads.0);
        let attachments = &mut config.attachments;
        attachments.max_bytes = self.max_attachment_bytes;
        // `check` refused a bad list before this is called.
        if let Ok(types) =
            chatcore::FileTypes::parse(self.attachment_types.iter().map(String::as_str))
        {
            attachments.types = types;
        }
        attachments.min_bytes_per_second = self.upload_min_rate;
        attachments.max_uploads = self.max_uploads as usize;
        attachments.max_uploads_per_sender = self.max_uploads_per_sender as usize;
        attachments.orphan_grace = self.attachment_orphan_grace;
        config.webhooks = self.webhooks.settings();
        // One process per SQLite file: its leases at start are a killed run's.
        config.webhooks.single_node = self.database_url.is_none();
        config
    }

    /// The connection timeouts and caps derived from these flags; `open_files` is the
    /// process's open-file limit, for `--max-connections auto`.
    pub fn conn_settings(&self, open_files: u64) -> ConnSettings {
        let mut settings = ConnSettings::none();
        settings.header_read_timeout = self.header_read_timeout.0;
        settings.body_read_timeout = self.body_read_timeout.0;
        settings.keep_alive_timeout = self.keep_alive_timeout.0;
        settings.write_timeout = self.write_timeout.0;
        settings.max_connections_per_address =
            self.max_connections_per_address.0.map(|n| n as usize);
        // A PostgreSQL pool and its listener connection hold descriptors of their own.
        let database_files = match self.database_url {
            Some(_) => u64::from(self.db_pool_size) + 1,
            None => 0,
        };
        settings.max_connections = match self.max_connections {
            MaxConnectionsSetting::Auto => Some(ConnSettings::max_connections_for(
                open_files,
                database_files,
            )),
            MaxConnectionsSetting::At(n) => Some(n as usize),
            MaxConnectionsSetting::Off => None,
        };
        settings.local_reserve = crate::conn::LOCAL_RESERVE;
        settings
    }

    /// The transport's limits derived from these flags.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            login_failures_per_address: self.limit_address_login_failures.0,
            token_failures_per_address: self.limit_address_token_failures.0,
            ws_connects_per_address: self.limit_ws_connects.0,
            uploads_per_address: self.limit_address_uploads.0,
            ws_frames_per_connection: self.limit_ws_frames.0,
            ws_rooms_per_connection: self.limit_ws_rooms as usize,
            limit_loopback: self.limit_loopback,
            trusted_proxies: self.trusted_proxies.clone(),
            ..HttpLimits::default()
        }
    }

    /// The SQLite store's options derived from these flags.
    pub fn sqlite_options(&self) -> chatcore::SqliteOptions {
        chatcore::SqliteOptions {
            durability: if self.sync_normal {
                chatcore::Durability::Normal
            } else {
                chatcore::Durability::Full
            },
            ..chatcore::SqliteOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chatcore::Rate;

    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("chat-http").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = parse(&[]);
        assert_eq!(c.bind.to_string(), "127.0.0.1:3001");
        assert_eq!(c.db, PathBuf::from("./chat.db"));
        assert_eq!(c.max_message_chars, 4000);
        assert_eq!(c.max_page_bytes, 1024 * 1024);
        assert_eq!(c.service_config().max_page_bytes, 1024 * 1024);
        assert!(c.cors_origins.is_empty());
        assert!(c.open_mode());
        assert!(c.check().is_ok());
        assert_eq!(c.database_url, None);
        assert_eq!(c.db_pool_size, 16);
        assert!(!c.server_timing);
    }

    #[test]
    fn limits_default_to_the_documented_ones() {
        let c = parse(&[]);
        let service = c.service_config().limits;
        assert_eq!(
            service.login_failures_per_officer.map(|r| r.to_string()),
            Some("10/15m".to_string())
        );
        assert_eq!(
            service.sends_per_sender.map(|r| r.to_string()),
            Some("30/10s".to_string())
        );
        let http = c.http_limits();
        let show = |r: Option<Rate>| r.map(|r| r.to_string());
        assert_eq!(
            show(http.login_failures_per_address).as_deref(),
            Some("30/15m")
        );
        assert_eq!(
            show(http.token_failures_per_address).as_deref(),
            Some("60/1m")
        );
        assert_eq!(show(http.ws_connects_per_address).as_deref(), Some("60/1m"));
        assert_eq!(
            show(http.ws_frames_per_connection).as_deref(),
            Some("200/10s")
        );
        assert_eq!(http.ws_rooms_per_connection, 100);
        assert_eq!(show(http.uploads_per_address).as_deref(), Some("60/10m"));
        assert_eq!(
            service.uploads_per_sender.map(|r| r.to_string()),
            Some("20/10m".to_string())
        );
        assert!(!http.limit_loopback);
        assert!(http.trusted_proxies.is_empty());
        // The transport's defaults are HttpLimits' own.
        assert_eq!(http, HttpLimits::default());
    }

    #[test]
    fn limits_are_set_or_turned_off_by_flag() {
        let c = parse(&[
            "--limit-sends",
            "off",
            "--limit-officer-login-failures",
            "3/1h",
            "--limit-ws-connects",
            "5/s",
            "--limit-ws-rooms",
            "7",
            "--limit-loopback",
            "--trusted-proxy",
            "10.0.0.1,::1",
        ]);
        let service = c.service_config().limits;
        assert_eq!(service.sends_per_sender, None);
        assert_eq!(
            service.login_failures_per_officer,
            Some(Rate::new(3, std::time::Duration::from_secs(3600)))
        );
        let http = c.http_limits();
        assert_eq!(http.ws_connects_per_address, Some(Rate::per_second(5)));
        assert_eq!(http.ws_rooms_per_connection, 7);
        assert!(http.limit_loopback);
        assert_eq!(http.trusted_proxies.len(), 2);
        for bad in [
            ["--limit-sends", "fast"],
            ["--limit-sends", "0/s"],
            ["--limit-ws-rooms", "0"],
            ["--trusted-proxy", "proxy.local"],
        ] {
            let args = std::iter::once("chat-http").chain(bad);
            assert!(Config::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn connection_settings_default_to_the_documented_ones() {
        let c = parse(&[]);
        assert_eq!(c.header_read_timeout.to_string(), "10s");
        assert_eq!(c.body_read_timeout.to_string(), "30s");
        assert_eq!(c.keep_alive_timeout.to_string(), "1m");
        assert_eq!(c.write_timeout.to_string(), "30s");
        assert_eq!(c.max_connections_per_address.to_string(), "256");
        assert_eq!(c.max_connections, MaxConnectionsSetting::Auto);
        let s = c.conn_settings(20_000);
        assert_eq!(s.header_read_timeout, Some(Duration::from_secs(10)));
        assert_eq!(s.body_read_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.keep_alive_timeout, Some(Duration::from_secs(60)));
        assert_eq!(s.write_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.max_connections_per_address, Some(256));
        assert_eq!(s.max_connections, Some(20_000 - 128 - 32));
        assert_eq!(s.local_reserve, 32);
        // A PostgreSQL pool's connections come out of the same descriptors.
        let pg = parse(&[
            "--database-url",
            "postgres://u@db/chat",
            "--db-pool-size",
            "16",
        ]);
        assert_eq!(
            pg.conn_settings(20_000).max_connections,
            Some(20_000 - 128 - 17 - 32)
        );
    }

    #[test]
    fn connection_settings_are_set_or_turned_off_by_flag() {
        let c = parse(&[
            "--header-read-timeout",
            "500ms",
            "--keep-alive-timeout",
            "off",
            "--body-read-timeout",
            "5s",
            "--write-timeout",
            "2m",
            "--max-connections-per-address",
            "off",
            "--max-connections",
            "1000",
        ]);
        let s = c.conn_settings(20_000);
        assert_eq!(s.header_read_timeout, Some(Duration::from_millis(500)));
        assert_eq!(s.keep_alive_timeout, None);
        assert_eq!(s.body_read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.write_timeout, Some(Duration::from_secs(120)));
        assert_eq!(s.max_connections_per_address, None);
        assert_eq!(s.max_connections, Some(1000));
        let off = parse(&["--max-connections", "off"]);
        assert_eq!(off.conn_settings(20_000).max_connections, None);
        for bad in [
            ["--header-read-timeout", "10"],
            ["--header-read-timeout", "0s"],
            ["--keep-alive-timeout", "2d"],
            ["--write-timeout", "-1s"],
            ["--max-connections-per-address", "0"],
            ["--max-connections", "lots"],
        ] {
            let args = std::iter::once("chat-http").chain(bad);
            assert!(Config::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_database_url_selects_postgres_and_must_not_be_empty() {
        let c = parse(&[
            "--database-url",
            "postgres://u@db/chat",
            "--db-pool-size",
            "4",
        ]);
        assert_eq!(c.database_url.as_deref(), Some("postgres://u@db/chat"));
        assert_eq!(c.db_pool_size, 4);
        assert!(c.check().is_ok());
        assert!(parse(&["--database-url", ""]).check().is_err());
    }

    #[test]
    fn open_mode_on_a_public_address_needs_the_override() {
        assert!(parse(&["--bind", "0.0.0.0:0"]).check().is_err());
        assert!(
            parse(&["--bind", "0.0.0.0:0", "--allow-open-remote"])
                .check()
                .is_ok()
        );
        assert!(
            parse(&["--bind", "0.0.0.0:0", "--admin-token", LONG])
                .check()
                .is_ok()
        );
    }

    #[test]
    fn secrets_shorter_than_32_characters_are_refused_with_how_to_make_one() {
        for flag in ["--admin-token", "--customer-secret"] {
            let short = parse(&[flag, "a"]).check().unwrap_err();
            assert!(short.contains("openssl rand -hex 32"), "{short}");
            assert!(short.contains(&format!("{flag}-file")), "{short}");
            assert!(parse(&[flag, ""]).check().is_err());
            assert!(parse(&[flag, &LONG[1..]]).check().is_err());
            assert!(parse(&[flag, LONG]).check().is_ok());
        }
        // A file and the plain flag for the same secret conflict.
        for (flag, file) in [
            ("--admin-token", "--admin-token-file"),
            ("--customer-secret", "--customer-secret-file"),
        ] {
            let args = ["chat-http", flag, LONG, file, "/run/secrets/x"];
            assert!(Config::try_parse_from(args).is_err(), "{flag} with {file}");
        }
        // An admin token longer than a bearer token can be would lock the admin out.
        let huge = "a".repeat(chatcore::MAX_TOKEN_BYTES + 1);
        assert!(parse(&["--admin-token", &huge]).check().is_err());
        let most = "a".repeat(chatcore::MAX_TOKEN_BYTES);
        assert!(parse(&["--admin-token", &most]).check().is_ok());
    }

    #[test]
    fn attachments_default_to_the_documented_settings_and_are_checked() {
        let c = parse(&[]);
        let a = c.service_config().attachments;
        assert_eq!(a.max_bytes, 10 * 1024 * 1024);
        assert_eq!(
            a.types.to_string(),
            "image/png,image/jpeg,image/webp,application/pdf,text/plain"
        );
        assert_eq!(a.min_bytes_per_second, 16 * 1024);
        assert_eq!((a.max_uploads, a.max_uploads_per_sender), (32, 2));
        assert_eq!(a.orphan_grace, Duration::from_secs(3600));
        assert_eq!(c.attachments_dir, None);
        assert_eq!(c.attachments_min_free, 1024 * 1024 * 1024);
        let set = parse(&[
            "--max-attachment-bytes",
            "1000",
            "--attachment-types",
            "image/png,text/csv",
            "--attachments-dir",
            "/srv/files",
            "--attachment-orphan-grace",
            "5m",
        ]);
        assert!(set.check().is_ok());
        let a = set.service_config().attachments;
        assert_eq!(a.max_bytes, 1000);
        assert_eq!(a.types.to_string(), "image/png,text/csv");
        assert_eq!(a.orphan_grace, Duration::from_secs(300));
        assert!(parse(&["--attachment-types", "text/html"]).check().is_err());
        assert!(
            parse(&[
                "--database-url",
                "postgres://u@db/c",
                "--attachments-dir",
                "/x"
            ])
            .check()
            .is_err()
        );
        for bad in [
            ["--max-attachment-bytes", "0"],
            ["--attachment-orphan-grace", "off"],
            ["--attachment-orphan-grace", "10ms"],
        ] {
            let args = std::iter::once("chat-http").chain(bad);
            assert!(Config::try_parse_from(args).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn durability_is_full_unless_normal_is_asked_for() {
        use chatcore::Durability;
        assert_eq!(parse(&[]).sqlite_options().durability, Durability::Full);
        assert_eq!(
            parse(&["--sync-full"]).sqlite_options().durability,
            Durability::Full
        );
        let normal = parse(&["--sync-normal"]);
        assert!(normal.check().is_ok());
        assert_eq!(normal.sqlite_options().durability, Durability::Normal);
        assert!(parse(&["--sync-normal", "--sync-full"]).check().is_err());
    }

    #[test]
    fn cors_origins_repeat_and_are_checked() {
        let c = parse(&["--cors-origin", "http://a", "--cors-origin", "http://b"]);
        assert_eq!(c.cors_origins, ["http://a", "http://b"]);
        assert!(c.check().is_ok());
        assert!(parse(&["--cors-origin", "shop.example"]).check().is_err());
    }
}
