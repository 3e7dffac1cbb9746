//! [`PgStore`]: `chatcore::Store` on PostgreSQL through a deadpool connection pool.
//!
//! Every invariant is decided by the database in one statement or one transaction, so
//! any number of nodes may share it: the claim is one conditional `UPDATE`, a message's
//! `seq` comes from `UPDATE chats SET last_seq = last_seq + 1` in the transaction that
//! inserts it (the row lock orders concurrent senders on any connection), and a
//! customer's one chat from `INSERT ... ON CONFLICT (customer_id) DO NOTHING`. It holds
//! no rule of the chat itself; those live in `chatcore`.
//!
//! Layout: `rows.rs` (the statements and the row mapping), `ops.rs` (the `Store` impl);
//! this file holds the options, the pool and the connection.

mod ops;
mod report;
mod rows;
mod webhooks;

use std::time::Duration;

use chatcore::StoreError;
use chatcore::store::StoreResult;
use deadpool_postgres::{Connect, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::error::classify_pool;
use crate::schema::migrate;

/// Options for [`PgStore::connect_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the pool opens to the server. Default 16.
    pub pool_size: usize,
    /// How long a request waits for a free connection, and for a new one to be
    /// established, before failing with `StoreError::Unavailable`. Default 5 s.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store. Cheap to clone; clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection settings may hold a password; only the pool's shape is shown.
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Parses a connection string (`postgres://user:pass@host:port/db` or
/// `host=... dbname=...`).
pub(crate) fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::backend(format!("invalid PostgreSQL connection string: {e}")))
}

/// Opens the pool's connections on the store's runtime: the connection's socket is
/// registered with that runtime's reactor, and its task (which does the connection's
/// reads and writes for every client that borrows it) runs there. deadpool's own
/// connector does both on whichever runtime first asked for the connection.
struct OnStoreRuntime(tokio::runtime::Handle);

impl OnStoreRuntime {
    async fn open(
        config: tokio_postgres::Config,
    ) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        let (client, connection) = config.connect(NoTls).await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a PostgreSQL connection failed");
            }
        });
        Ok((client, driver))
    }
}

impl Connect for OnStoreRuntime {
    fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        Box::pin(async move {
            match self.0.spawn(Self::open(config.clone())).await {
                Ok(opened) => opened,
                // The store's runtime is shutting down: opened here, as the last
                // requests of a stopping server may need.
                Err(_) => Self::open(config).await,
            }
        })
    }
}

impl PgStore {
    /// Connects with default options and migrates the schema.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(parse_url(url)?, PgOptions::default()).await
    }

    /// Connects with `options` and migrates the schema (once, even if several nodes
    /// start at the same moment). Every connection of the pool is opened and driven on
    /// the runtime this is called on, whichever runtime asks for it later: a task on
    /// another runtime (chat-http's webhook thread, which runs at a lower priority and
    /// stops before the server does) borrows connections without driving them.
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        options: PgOptions,
    ) -> StoreResult<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("chat-postgres");
        }
        let manager = Manager::from_connect(
            config,
            OnStoreRuntime(tokio::runtime::Handle::current()),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StoreError::backend(format!("cannot build the pool: {e}")))?;
        let store = Self { pool };
        let mut client = store.client().await?;
        migrate(&mut client).await?;
        Ok(store)
    }

    /// The attachments' store on the same database and pool.
    pub fn blobs(&self) -> crate::PgBlobStore {
        crate::PgBlobStore::new(self.pool.clone())
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(classify_pool)
    }
}
