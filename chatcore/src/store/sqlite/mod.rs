//! [`SqliteStore`]: the default, embedded store on one SQLite file (or in memory).
//!
//! One dedicated writer thread owns the only writing connection. Writes from any number
//! of tasks queue to it, and it commits whatever has queued up in one transaction (group
//! commit: many writes, one commit), each write in its own savepoint so that one failing
//! write does not undo the others. A caller is answered only after the commit, so an
//! acknowledged write is in the WAL. Reads run on a small pool of read-only connections
//! on the blocking thread pool; in WAL mode they never wait for the writer. No SQLite call
//! runs on an async worker thread.
//!
//! Storage faults (a full disk, a read-only file or file system, an I/O error) fail the
//! writes they meet with [`StoreError::Unavailable`] and change nothing. A connection
//! that met one is replaced before the next write (some faults stick to a connection: a
//! file opened read-only stays read-only), and the read pool follows, so the store
//! recovers by itself once the fault is gone. The `-wal` and `-shm` files are kept when
//! the store closes (persistent WAL): SQLite can read a WAL database on a read-only file
//! system only if they exist. docs/RELIABILITY.md describes the whole behaviour.
//!
//! Layout: `writer.rs` (the writer thread and its group commit), `pool.rs` (the read
//! pool), `schema.rs` (migrations), `error.rs` (SQLite errors to `StoreError`), `rows.rs`
//! (the hot statements and the row mapping), `ops.rs` (the `Store` impl).

mod error;
mod ops;
mod pool;
mod report;
mod rows;
mod schema;
mod webhooks;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, FileControl, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreError, StoreResult};
use error::classify;
use pool::{IdleReaders, ReadPool};
pub use schema::SQLITE_SCHEMA_VERSION;
use schema::migrate;
use writer::{Reopen, WriteJob, Writer, open_writer};

/// How hard a commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode (opt-in). A committed write is in the WAL file
    /// before the caller hears of it, so a crash or SIGKILL of the process loses nothing
    /// acknowledged; but the WAL is fsynced only at checkpoints, so a power loss or
    /// kernel crash may lose the last acknowledged commits since then (it never corrupts
    /// the database). Faster on disks where an fsync is slow.
    Normal,
    /// `synchronous=FULL` (the default): every commit (every group of writes) is fsynced
    /// before it is acknowledged, so acknowledged writes survive power loss too, at the
    /// cost of one fsync per commit group.
    #[default]
    Full,
}

/// Options for [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Commit durability. Default [`Durability::Full`].
    pub durability: Durability,
    /// Read connections kept open (file databases only). Default 4.
    pub readers: usize,
    /// Most writes committed together in one transaction. Default 256.
    pub max_batch: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            readers: 4,
            max_batch: 256,
        }
    }
}

/// The SQLite store. Cheap to clone; all clones share one writer thread and read pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// `None` for an in-memory database, whose reads go through the writer.
    readers: Option<ReadPool>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) a database file with default options.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens a database file with `options`.
    ///
    /// A database that is read-only to this process (its file or file system) opens
    /// when its schema is current: reads are served and writes fail with
    /// [`StoreError::Unavailable`] until it becomes writable, without reopening the store.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = open_writer(&path, OpenFlags::SQLITE_OPEN_CREATE, options.durability)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(classify)? {
            tracing::warn!(
                path = %path.display(),
                "the database is read-only: serving reads; writes fail as unavailable \
                 until it is writable again"
            );
        }
        let idle = Arc::new(IdleReaders::default());
        let writer = Writer::new(
            conn,
            Some(Reopen {
                path: path.clone(),
                durability: options.durability,
                readers: idle.clone(),
            }),
        );
        let readers = ReadPool::new(path, idle, options.readers);
        Ok(Self::start(writer, Some(readers), options.max_batch))
    }

    /// A private in-memory database, gone when the store is dropped.
    pub fn in_memory() -> StoreResult<Self> {
        let conn = Connection::open_in_memory().map_err(classify)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(classify)?;
        migrate(&conn)?;
        let writer = Writer::new(conn, None);
        Ok(Self::start(
            writer,
            None,
            SqliteOptions::default().max_batch,
        ))
    }

    /// Runs SQLite's `PRAGMA integrity_check` over the whole file: `Ok` when it reports
    /// "ok", else a [`StoreError::Backend`] listing what it found. For operators and
    /// tests after a crash or a storage fault; it reads every page, so it takes a while
    /// on a large database.
    pub async fn integrity_check(&self) -> StoreResult<()> {
        let report = self
            .read(|c| {
                let mut st = c.prepare("PRAGMA integrity_check").map_err(classify)?;
                let rows = st
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(classify)?
                    .collect::<rusqlite::Result<Vec<_>>>();
                rows.map_err(classify)
            })
            .await?;
        if report == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::backend(format!(
                "integrity check failed: {}",
                report.join("; ")
            )))
        }
    }

    fn start(writer: Writer, readers: Option<ReadPool>, max_batch: usize) -> Self {
        let (tx, handle) = writer.spawn(max_batch);
        Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(handle)),
                readers,
            }),
        }
    }

    /// Runs `f` on the writer inside the group transaction; answers after the commit
    /// (fsynced, with [`Durability::Full`]).
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write_job(f, true).await
    }

    /// Like [`Self::write`], for a write that a crash may lose without harm (the webhook
    /// deliveries' leases and settlements: lost, the events are sent again, as at least
    /// once allows): a commit of such writes alone is not fsynced (`WriteJob::durable`).
    async fn write_lazily<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write_job(f, false).await
    }

    async fn write_job<T, F>(&self, f: F, durable: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let sender = self
            .inner
            .writer
            .lock()
            .map_err(|_| StoreError::backend("writer lock poisoned"))?
            .clone()
            .ok_or_else(StoreError::closed)?;
        let (tx, rx) = oneshot::channel();
        sender
            .send(writer::job(f, durable, tx))
            .await
            .map_err(|_| StoreError::closed())?;
        rx.await.map_err(|_| StoreError::closed())?
    }

    /// Runs `f` on a read connection (or on the writer for an in-memory database).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let Some(pool) = &self.inner.readers else {
            return self.write(f).await;
        };
        pool.run(f).await
    }

    /// Ends the writer thread once the queued writes are committed, then closes the read
    /// pool; later calls fail as closed.
    async fn stop(&self) -> StoreResult<()> {
        // Dropping the last sender ends the writer loop after the queued writes.
        let sender = self.inner.writer.lock().ok().and_then(|mut w| w.take());
        drop(sender);
        let handle = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut h| h.take());
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::backend(e.to_string()))?
                .map_err(|_| StoreError::backend("the SQLite writer thread panicked"))?;
        }
        if let Some(pool) = &self.inner.readers {
            pool.close();
        }
        Ok(())
    }
}

/// Keeps the `-wal` and `-shm` files when the connection closes (SQLite deletes them by
/// default when the last connection closes). A WAL database on a read-only file system
/// can be read only if both exist, so a server stopped cleanly can be started again on a
/// file system that has been made read-only meanwhile.
fn persist_wal(conn: &Connection) -> StoreResult<()> {
    conn.file_control(Some(rusqlite::MAIN_DB), FileControl::PersistWal(&mut 1))
        .map_err(classify)
}
