//! The `chat-http` binary: parse the config, start logging, open the store (SQLite, or
//! PostgreSQL with its cross-node bus), bind, print where things are served and call
//! `chat_http::serve`. It must not hold any server logic; that lives in the library.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chat_http::webhooks::HttpSender;
use chat_http::{AppState, Branding, Config};
use chat_postgres::{PgBus, PgOptions, PgStore};
use chatcore::{ChatService, FsBlobStore, LocalBus, SqliteStore};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut config = Config::parse();
    let filter = match EnvFilter::try_new(&config.log) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("chat-http: invalid --log filter {:?}: {e}", config.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(message) = read_secret_files(&mut config).and_then(|()| config.check()) {
        eprintln!("chat-http: {message}");
        return ExitCode::from(2);
    }
    // Read before anything is opened, so that a bad branding file stops the start.
    let branding = match config.branding.as_deref().map(Branding::load).transpose() {
        Ok(branding) => branding.unwrap_or_default(),
        Err(message) => {
            eprintln!("chat-http: {message}");
            return ExitCode::from(2);
        }
    };
    // The webhooks' TLS roots (the system's, --webhook-ca's), read once, before anything
    // is opened: a bad CA file stops the start.
    let webhook_sender = match webhook_sender(&config) {
        Ok(sender) => sender,
        Err(message) => {
            eprintln!("chat-http: {message}");
            return ExitCode::from(2);
        }
    };
    let open_files = raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chat-http: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, branding, webhook_sender, open_files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-http: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: Config,
    branding: Branding,
    webhook_sender: HttpSender,
    open_files: u64,
) -> anyhow::Result<()> {
    // Installed before the store opens, so that its first writes are counted too.
    chat_http::metrics::recorder();
    let service = match &config.database_url {
        Some(url) => open_postgres(&config, url).await?,
        None => {
            let store = SqliteStore::open_with(&config.db, config.sqlite_options())
                .with_context(|| format!("cannot open the database {}", config.db.display()))?;
            let dir = attachments_dir(&config);
            let blobs = FsBlobStore::open(&dir)
                .with_context(|| {
                    format!("cannot open the attachments directory {}", dir.display())
                })?
                .min_free(config.attachments_min_free);
            ChatService::with_blobs(
                Arc::new(store),
                Arc::new(blobs),
                Arc::new(LocalBus::new()),
                config.service_config(),
            )
        }
    };
    set_flag_webhook(&config, &service).await?;
    let state = AppState::builder(service)
        .cors_origins(config.cors_origins.clone())
        .limits(config.http_limits())
        .connections(config.conn_settings(open_files))
        .server_timing(config.server_timing)
        .branding(branding)
        .webhook_sender(webhook_sender)
        .webhook_thread(config.webhooks.webhook_nice)
        .build();
    let listener =
        listen(config.bind).with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let metrics_addr = match config.metrics_bind {
        Some(bind) => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen on {bind} (--metrics-bind)"))?;
            let at = listener
                .local_addr()
                .context("cannot read the metrics address")?;
            // Stops when the server's shutdown starts.
            tokio::spawn(chat_http::metrics::serve_metrics(
                listener,
                state.clone(),
                std::future::pending(),
            ));
            Some(at)
        }
        None => None,
    };
    // Handlers first: whoever reads the banner may signal at once.
    let shutdown = chat_http::shutdown::signal();
    print_banner(&config, addr, metrics_addr, open_files);
    chat_http::serve(listener, state, shutdown)
        .await
        .context("server failed")?;
    Ok(())
}

/// `--webhook-url` and `--webhook-secret`: the webhook they name, created or updated
/// in the store (every node started with the same flags sets the same one).
async fn set_flag_webhook(config: &Config, service: &ChatService) -> anyhow::Result<()> {
    let flags = &config.webhooks;
    let (Some(url), Some(secret)) = (&flags.webhook_url, &flags.webhook_secret) else {
        return Ok(());
    };
    let events = (!flags.webhook_events.is_empty()).then(|| flags.webhook_events.clone());
    service
        .set_flag_webhook(&chatcore::Actor::Admin, url.clone(), secret.clone(), events)
        .await
        .map_err(|e| anyhow::anyhow!("--webhook-url: {e}"))?;
    Ok(())
}

/// The webhooks' sender: trusting the system's CA roots, and `--webhook-ca`'s
/// certificates when given. The error names the flag and the file.
fn webhook_sender(config: &Config) -> Result<HttpSender, String> {
    let Some(path) = &config.webhooks.webhook_ca else {
        return Ok(HttpSender::new());
    };
    let pem = std::fs::read(path).map_err(|e| format!("--webhook-ca {}: {e}", path.display()))?;
    HttpSender::with_ca(&pem).map_err(|e| format!("--webhook-ca {}: {e}", path.display()))
}

/// Where attachments' files go with SQLite: `--attachments-dir`, else beside the
/// database file.
fn attachments_dir(config: &Config) -> std::path::PathBuf {
    config
        .attachments_dir
        .clone()
        .unwrap_or_else(|| FsBlobStore::beside(&config.db))
}

/// Reads `--admin-token-file` and `--customer-secret-file` into the secrets they hold,
/// without one trailing newline (as `echo` and editors leave). The error names the file,
/// never its content.
fn read_secret_files(config: &mut Config) -> Result<(), String> {
    let read = |flag: &str, path: &std::path::Path| {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Ok::<_, String>(text.strip_suffix('\r').unwrap_or(text).to_string())
    };
    if let Some(path) = &config.admin_token_file {
        config.admin_token = Some(read("--admin-token-file", path)?);
    }
    if let Some(path) = &config.customer_secret_file {
        config.customer_secret = Some(read("--customer-secret-file", path)?);
    }
    if let Some(path) = &config.webhooks.webhook_secret_file {
        config.webhooks.webhook_secret = Some(read("--webhook-secret-file", path)?);
    }
    Ok(())
}

/// Connections the kernel queues for the accept loop (it takes at most
/// `net.core.somaxconn`, 4,096 by default). Tokio's default of 1,024 overflowed under a
/// flood of reconnects (docs/SECURITY.md): the kernel then drops new clients' SYNs, and
/// they retry only after a second.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as tokio's `bind`).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every connection holds a file descriptor: raise the soft open-file limit to the hard
/// one, so the server is not capped at the usual default of 1,024 connections. Returns the
/// limit in force, from which `--max-connections auto` is derived.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open-file limit");
            limit
        }
        Err(e) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!(error = %e, limit, "could not raise the open-file limit");
            limit
        }
    }
}

/// A service on PostgreSQL: the shared store and the cross-node bus.
async fn open_postgres(config: &Config, url: &str) -> anyhow::Result<ChatService> {
    // The connection string may hold a password: errors name the setting, not its value.
    let pg_config: chat_postgres::tokio_postgres::Config = url
        .parse()
        .context("--database-url is not a valid PostgreSQL connection string")?;
    let options = PgOptions {
        pool_size: config.db_pool_size as usize,
        ..PgOptions::default()
    };
    let pg = PgStore::connect_with(pg_config.clone(), options)
        .await
        .context("cannot open the PostgreSQL database (--database-url)")?;
    // Attachments' bytes in the same database, so that every node serves them.
    let blobs = Arc::new(pg.blobs());
    let store: Arc<dyn chatcore::Store> = Arc::new(pg);
    let bus = PgBus::connect_with(pg_config, store.clone(), LocalBus::DEFAULT_CAPACITY)
        .await
        .context("cannot listen for events on PostgreSQL (--database-url)")?;
    Ok(ChatService::with_blobs(
        store,
        blobs,
        Arc::new(bus),
        config.service_config(),
    ))
}

fn print_banner(
    config: &Config,
    addr: std::net::SocketAddr,
    metrics: Option<std::net::SocketAddr>,
    open_files: u64,
) {
    let base = format!("http://{addr}");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "chat-http listening on {base}");
    let _ = writeln!(out, "  customer page:   {base}/customer");
    let _ = writeln!(out, "  officer console: {base}/officer");
    let _ = writeln!(out, "  admin console:   {base}/admin");
    let _ = writeln!(out, "  REST API:        {base}/api (docs/API.md)");
    let _ = writeln!(out, "  WebSocket:       ws://{addr}/ws");
    let _ = writeln!(out, "  OpenAPI:         {base}/api/openapi.json");
    match metrics {
        Some(at) => {
            let _ = writeln!(out, "  metrics:         http://{at}/metrics (no token)");
        }
        None => {
            let _ = writeln!(out, "  metrics:         {base}/metrics (admin token)");
        }
    }
    if config.database_url.is_some() {
        let _ = writeln!(
            out,
            "  database:        PostgreSQL (--database-url), pool of {}",
            config.db_pool_size
        );
        let _ = writeln!(out, "  attachments:     in PostgreSQL");
    } else {
        let _ = writeln!(out, "  database:        {}", config.db.display());
        let _ = writeln!(
            out,
            "  attachments:     {}",
            attachments_dir(config).display()
        );
    }
    let _ = writeln!(
        out,
        "  attachment limit: {} bytes; types {}",
        config.max_attachment_bytes,
        config.attachment_types.join(",")
    );
    let conn = config.conn_settings(open_files);
    let in_all = match conn.max_connections {
        Some(n) => format!("at most {n} (+{} from 127.0.0.1/::1)", conn.local_reserve),
        None => "no cap in all".to_string(),
    };
    let per_address = match conn.max_connections_per_address {
        Some(n) => format!("{n} per address"),
        None => "no cap per address".to_string(),
    };
    let _ = writeln!(
        out,
        "  connections:     {in_all}, {per_address}; timeouts: header {}, keep-alive {}, \
         body {}, write {}",
        config.header_read_timeout,
        config.keep_alive_timeout,
        config.body_read_timeout,
        config.write_timeout,
    );
    if config.open_mode() {
        let _ = writeln!(
            out,
            "  OPEN MODE: no admin token; anyone may create officers, and officers \
             without a password log in by id alone"
        );
    }
    if config.customer_secret.is_none() {
        let _ = writeln!(
            out,
            "  customer ids are taken on trust (no customer secret): anyone may log in \
             as any customer"
        );
    }
    if let Some(path) = &config.branding {
        let _ = writeln!(out, "  branding:        {}", path.display());
    }
    if let Some(url) = &config.webhooks.webhook_url {
        // Without its query, which may carry a receiver's token.
        let shown = url.split(['?', '#']).next().unwrap_or_default();
        let _ = writeln!(
            out,
            "  webhook:         {shown} (signed; more in /api/webhooks)"
        );
    }
    let _ = writeln!(out, "Press Ctrl-C or send SIGTERM to stop.");
    let _ = out.flush();
}
