//! A real chat-http server for remote-mode tests: `chat_http::serve` on 127.0.0.1:0 with
//! a temporary SQLite file, in a thread of its own with its own runtime, so the test's
//! CLI processes talk to it over real sockets. It can be stopped and started again on the
//! same port and file, to test reconnection. [`PgNode`] is the same server on PostgreSQL
//! (`PgStore` and `PgBus`, as `chat-http --database-url` runs).

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use std::sync::Arc;

use chat_postgres::{PgBus, PgOptions, PgStore};
use chatcore::{ChatService, LocalBus, ServiceConfig, Store};
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
/// The customer secret of [`TestServer::start_verifying_customers`].
pub const CUSTOMER_SECRET: &str = "test-customer-secret-0123456789abcdef";

pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub db: PathBuf,
    admin_token: Option<String>,
    customer_secret: Option<String>,
    _dir: tempfile::TempDir,
    running: Option<Running>,
}

struct Running {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl TestServer {
    /// A secured server (admin token [`ADMIN_TOKEN`]).
    pub fn start() -> Self {
        Self::start_with(Some(ADMIN_TOKEN))
    }

    /// A server with this admin token, or in open mode with `None`.
    pub fn start_with(admin_token: Option<&str>) -> Self {
        Self::start_secrets(admin_token, None)
    }

    /// A secured server that also checks customer logins ([`CUSTOMER_SECRET`]).
    pub fn start_verifying_customers() -> Self {
        Self::start_secrets(Some(ADMIN_TOKEN), Some(CUSTOMER_SECRET))
    }

    fn start_secrets(admin_token: Option<&str>, customer_secret: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let admin_token = admin_token.map(str::to_string);
        let customer_secret = customer_secret.map(str::to_string);
        let (addr, running) = run(
            Backing::Sqlite(db.clone()),
            (admin_token.clone(), customer_secret.clone()),
            "127.0.0.1:0".parse().unwrap(),
        );
        Self {
            url: format!("http://{addr}"),
            addr,
            db,
            admin_token,
            customer_secret,
            _dir: dir,
            running: Some(running),
        }
    }

    /// Stops the server gracefully (WebSockets are closed with 1001) and waits for it.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            running.thread.join().unwrap();
        }
    }

    /// Starts it again on the same port and database file.
    pub fn restart(&mut self) {
        self.stop();
        let (addr, running) = run(
            Backing::Sqlite(self.db.clone()),
            (self.admin_token.clone(), self.customer_secret.clone()),
            self.addr,
        );
        assert_eq!(addr, self.addr);
        self.running = Some(running);
    }

    pub fn db(&self) -> &Path {
        &self.db
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A chat-http node in open mode on a PostgreSQL database, sharing its events with every
/// other user of the database (other nodes, `chat-cli --database-url`). Stopped on drop.
pub struct PgNode {
    pub url: String,
    running: Option<Running>,
}

impl PgNode {
    pub fn start(database: chat_postgres::tokio_postgres::Config) -> Self {
        let (addr, running) = run(
            Backing::Postgres(Box::new(database)),
            (None, None),
            "127.0.0.1:0".parse().unwrap(),
        );
        Self {
            url: format!("http://{addr}"),
            running: Some(running),
        }
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.thread.join();
        }
    }
}

/// Where a test server keeps its data.
enum Backing {
    Sqlite(PathBuf),
    Postgres(Box<chat_postgres::tokio_postgres::Config>),
}

impl Backing {
    async fn service(self, config: ServiceConfig) -> ChatService {
        match self {
            Backing::Sqlite(db) => ChatService::open_sqlite(&db, config).unwrap(),
            Backing::Postgres(database) => {
                let store: Arc<dyn Store> = Arc::new(
                    PgStore::connect_with((*database).clone(), PgOptions::default())
                        .await
                        .expect("PgStore"),
                );
                let bus = PgBus::connect_with(*database, store.clone(), LocalBus::DEFAULT_CAPACITY)
                    .await
                    .expect("PgBus");
                ChatService::new(store, Arc::new(bus), config)
            }
        }
    }
}

/// The admin token and the customer secret a server is configured with.
type Secrets = (Option<String>, Option<String>);

fn run(backing: Backing, secrets: Secrets, addr: SocketAddr) -> (SocketAddr, Running) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut config = ServiceConfig::default();
            let (admin_token, customer_secret) = secrets;
            config.admin_token = admin_token;
            config.customer_secret = customer_secret.map(String::into_bytes);
            let service = backing.service(config).await;
            // The port may still be held for a moment after a stop: retry briefly.
            let mut tries = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("binding {addr}: {e}"),
                }
            };
            ready_tx.send(listener.local_addr().unwrap()).unwrap();
            let state = chat_http::AppState::new(service);
            chat_http::serve(listener, state, async move {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    let addr = ready_rx.recv().expect("the server thread failed to start");
    (
        addr,
        Running {
            stop: stop_tx,
            thread,
        },
    )
}
