//! The read pool: a few read-only connections, each read on the blocking thread pool; in
//! WAL mode they never wait for the writer. It must not write, nor keep a connection that
//! met a storage fault or that the writer retired.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::error::classify;
use super::persist_wal;
use crate::store::{StoreError, StoreResult};

/// The read-only connections to a database file, at most `permits` in use at once.
pub(super) struct ReadPool {
    path: PathBuf,
    idle: Arc<IdleReaders>,
    permits: Semaphore,
}

/// Idle read connections, each with the generation it was opened in. The writer bumps
/// the generation and empties the list each time it replaces its connection after a
/// storage fault; readers busy at that moment are closed when they come back. SQLite
/// shares one `-shm` mapping between all connections of a process to a file, and a
/// mapping opened read-only (on a read-only file system) makes every connection that
/// shares it read-only too, so the writer can write again only once every reader opened
/// during the fault is closed.
#[derive(Default)]
pub(super) struct IdleReaders {
    generation: AtomicU64,
    idle: Mutex<Vec<(u64, Connection)>>,
}

impl IdleReaders {
    /// Closes every idle reader and makes the busy ones close when they return.
    pub(super) fn retire_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let retired = self.idle.lock().map(|mut idle| std::mem::take(&mut *idle));
        drop(retired);
    }
}

impl ReadPool {
    /// A pool on `path` of at most `readers` connections at once, which shares its idle
    /// list with the writer (who retires it after a storage fault).
    pub(super) fn new(path: PathBuf, idle: Arc<IdleReaders>, readers: usize) -> Self {
        Self {
            path,
            idle,
            permits: Semaphore::new(readers.max(1)),
        }
    }

    /// Runs `f` on a read connection, on the blocking thread pool.
    pub(super) async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::closed())?;
        let generation = self.idle.generation.load(Ordering::Acquire);
        // A connection from before the writer's last reopen is dropped, not reused.
        let idle = self
            .idle
            .idle
            .lock()
            .map_err(|_| StoreError::backend("reader pool lock poisoned"))?
            .pop()
            .filter(|(opened_in, _)| *opened_in == generation);
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match idle {
                Some((_, c)) => c,
                None => open_reader(&path)?,
            };
            let r = f(&conn);
            Ok::<_, StoreError>((conn, r))
        })
        .await
        .map_err(|e| StoreError::backend(format!("reader task failed: {e}")))??;
        // A connection that met a storage fault is not trusted with the next read, and
        // one the writer retired while it was busy is closed now.
        let retired = self.idle.generation.load(Ordering::Acquire) != generation;
        if !retired && !matches!(result, Err(StoreError::Unavailable(_))) {
            if let Ok(mut idle) = self.idle.idle.lock() {
                idle.push((generation, conn));
            }
        }
        result
    }

    /// Refuses new reads and closes the idle connections.
    pub(super) fn close(&self) {
        self.permits.close();
        self.idle.retire_all();
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(classify)?;
    super::writer::plan_statements_once(&conn)?;
    persist_wal(&conn)?;
    Ok(conn)
}
