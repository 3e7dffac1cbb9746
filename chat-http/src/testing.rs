//! A real server for tests (feature `testing`): [`serve`] on 127.0.0.1 with a port of its
//! own, on a temporary SQLite file (or a given one, or PostgreSQL), on a thread and
//! runtime of its own, so that sync and async tests, and processes the test starts
//! (chat-cli, chat-bench), talk to it over real sockets. It can be stopped and started
//! again on the same port and data, to test reconnection. Stopped on drop.
//!
//! ```no_run
//! let server = chat_http::testing::TestServer::builder().secured().start();
//! // ... talk to server.url() ...
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use chat_postgres::{PgBus, PgOptions, PgStore, tokio_postgres};
use chatcore::{ChatService, LocalBus, ServiceConfig, Store};
use tokio::sync::oneshot;

use crate::{AppState, AppStateBuilder, serve};

/// The admin token of [`TestServerBuilder::secured`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
/// The customer secret of [`TestServerBuilder::secured`].
pub const CUSTOMER_SECRET: &str = "test-customer-secret-0123456789abcdef";

type ConfigureService = Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>;
type ConfigureState = Arc<dyn Fn(AppStateBuilder) -> AppStateBuilder + Send + Sync>;

/// How to start a [`TestServer`]: open mode on a fresh SQLite file unless told otherwise.
#[derive(Clone, Default)]
pub struct TestServerBuilder {
    admin_token: Option<String>,
    customer_secret: Option<String>,
    db: Option<PathBuf>,
    postgres: Option<tokio_postgres::Config>,
    service: Option<ConfigureService>,
    state: Option<ConfigureState>,
}

impl TestServerBuilder {
    /// Secured mode: [`ADMIN_TOKEN`] and [`CUSTOMER_SECRET`].
    pub fn secured(self) -> Self {
        self.admin_token(ADMIN_TOKEN)
            .customer_secret(CUSTOMER_SECRET)
    }

    /// This admin token.
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_string());
        self
    }

    /// This customer secret (customers must prove who they are).
    pub fn customer_secret(mut self, secret: &str) -> Self {
        self.customer_secret = Some(secret.to_string());
        self
    }

    /// The SQLite file to serve (kept after the server stops), instead of a fresh one.
    pub fn db(mut self, path: impl Into<PathBuf>) -> Self {
        self.db = Some(path.into());
        self
    }

    /// Serve a PostgreSQL database (`PgStore` and `PgBus`, as `chat-http --database-url`
    /// does): one node of several.
    pub fn postgres(mut self, database: tokio_postgres::Config) -> Self {
        self.postgres = Some(database);
        self
    }

    /// Changes the engine's configuration after the secrets are set.
    pub fn configure_service(
        mut self,
        f: impl Fn(&mut ServiceConfig) + Send + Sync + 'static,
    ) -> Self {
        self.service = Some(Arc::new(f));
        self
    }

    /// Changes the transport's settings (`AppState::builder`).
    pub fn configure_state(
        mut self,
        f: impl Fn(AppStateBuilder) -> AppStateBuilder + Send + Sync + 'static,
    ) -> Self {
        self.state = Some(Arc::new(f));
        self
    }

    /// Starts the server and waits until it listens.
    ///
    /// # Panics
    /// When the store cannot be opened or the port bound: a test cannot go on.
    pub fn start(self) -> TestServer {
        let (dir, db) = match (&self.db, &self.postgres) {
            (_, Some(_)) => (None, None),
            (Some(db), None) => (None, Some(db.clone())),
            (None, None) => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let db = dir.path().join("server.db");
                (Some(dir), Some(db))
            }
        };
        let running = run(self.clone(), db.clone(), "127.0.0.1:0".parse().unwrap());
        TestServer {
            url: format!("http://{}", running.addr),
            addr: running.addr,
            db,
            spec: self,
            running: Some(running),
            _dir: dir,
        }
    }
}

/// A running server; stopped on drop.
pub struct TestServer {
    url: String,
    addr: SocketAddr,
    db: Option<PathBuf>,
    spec: TestServerBuilder,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl TestServer {
    /// How to start one.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// An open-mode server on a fresh SQLite file.
    pub fn open() -> Self {
        Self::builder().start()
    }

    /// A secured server ([`ADMIN_TOKEN`], [`CUSTOMER_SECRET`]) on a fresh SQLite file.
    pub fn secured() -> Self {
        Self::builder().secured().start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its SQLite file (none on PostgreSQL).
    pub fn db(&self) -> Option<&Path> {
        self.db.as_deref()
    }

    /// Its admin token, if any.
    pub fn admin_token(&self) -> Option<&str> {
        self.spec.admin_token.as_deref()
    }

    /// Its customer secret, if any.
    pub fn customer_secret(&self) -> Option<&str> {
        self.spec.customer_secret.as_deref()
    }

    /// Stops the server gracefully (WebSockets are closed with 1001) and waits for it.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let running = run(self.spec.clone(), self.db.clone(), self.addr);
        assert_eq!(running.addr, self.addr);
        self.running = Some(running);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn service(spec: &TestServerBuilder, db: Option<PathBuf>) -> ChatService {
    let mut config = ServiceConfig::default();
    config.admin_token = spec.admin_token.clone();
    config.customer_secret = spec.customer_secret.clone().map(String::into_bytes);
    // The schemes this server's sender speaks (http and https), as the binary takes them.
    config.webhooks.schemes = crate::webhooks::SCHEMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(f) = &spec.service {
        f(&mut config);
    }
    match (&spec.postgres, db) {
        (Some(database), _) => {
            let pg = PgStore::connect_with(database.clone(), PgOptions::default())
                .await
                .expect("PgStore");
            let blobs = Arc::new(pg.blobs());
            let store: Arc<dyn Store> = Arc::new(pg);
            let bus =
                PgBus::connect_with(database.clone(), store.clone(), LocalBus::DEFAULT_CAPACITY)
                    .await
                    .expect("PgBus");
            ChatService::with_blobs(store, blobs, Arc::new(bus), config)
        }
        (None, Some(db)) => ChatService::open_sqlite(&db, config).expect("open the SQLite store"),
        (None, None) => unreachable!("a test server has a SQLite file or PostgreSQL"),
    }
}

fn run(spec: TestServerBuilder, db: Option<PathBuf>, addr: SocketAddr) -> Running {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let service = service(&spec, db).await;
            // The port may still be held for a moment after a stop: retry briefly.
            let mut tries = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(_) if tries < 100 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("binding {addr}: {e}"),
                }
            };
            let _ = ready_tx.send(listener.local_addr().expect("a bound address"));
            let mut state = AppState::builder(service);
            if let Some(f) = &spec.state {
                state = f(state);
            }
            let _ = serve(listener, state.build(), async move {
                let _ = stop_rx.await;
            })
            .await;
        });
    });
    let addr = ready_rx.recv().expect("the test server failed to start");
    Running {
        addr,
        stop: stop_tx,
        thread,
    }
}
