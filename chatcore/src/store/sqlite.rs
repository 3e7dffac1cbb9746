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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, FileControl, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{
    AppendOutcome, ClaimOutcome, NewChat, NewMessage, OfficerRecord, PageQuery, SessionRecord,
    SessionSubject, Store, StoreError, StoreResult, TokenHash, fill_page,
};
use crate::ids::{ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{Chat, ChatStatus, Message, Officer, SenderType, Timestamp};

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

struct ReadPool {
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
struct IdleReaders {
    generation: AtomicU64,
    idle: Mutex<Vec<(u64, Connection)>>,
}

impl IdleReaders {
    /// Closes every idle reader and makes the busy ones close when they return.
    fn retire_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let retired = self.idle.lock().map(|mut idle| std::mem::take(&mut *idle));
        drop(retired);
    }
}

const WRITE_QUEUE: usize = 4096;

/// Versioned schema. Entry `i` takes the database from `user_version = i` to `i + 1`;
/// entries are never edited once released, only appended.
const MIGRATIONS: &[&str] = &[
    // v1: the original design's three tables (officers, chats, messages) plus what the
    // contract needs: per-chat seq, idempotency keys, password hashes and sessions.
    r#"
    CREATE TABLE officers (
        id            TEXT PRIMARY KEY,
        display_name  TEXT,
        password_hash TEXT,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE chats (
        id                  TEXT PRIMARY KEY,
        customer_id         TEXT NOT NULL UNIQUE,
        assigned_officer_id TEXT REFERENCES officers(id),
        status              TEXT NOT NULL,
        created_at          INTEGER NOT NULL,
        last_seq            INTEGER NOT NULL DEFAULT 0
    );
    -- The queue: only pending chats are in this index, oldest first.
    CREATE INDEX chats_queue ON chats(created_at, id) WHERE assigned_officer_id IS NULL;
    CREATE INDEX chats_by_officer ON chats(assigned_officer_id, created_at, id)
        WHERE assigned_officer_id IS NOT NULL;
    -- Messages are clustered by (chat_id, seq): a page is one contiguous range scan.
    CREATE TABLE messages (
        chat_id           TEXT NOT NULL REFERENCES chats(id),
        seq               INTEGER NOT NULL,
        id                TEXT NOT NULL UNIQUE,
        sender_type       TEXT NOT NULL,
        sender_id         TEXT NOT NULL,
        content           TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        client_message_id TEXT,
        PRIMARY KEY (chat_id, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX messages_idempotency
        ON messages(chat_id, sender_type, sender_id, client_message_id)
        WHERE client_message_id IS NOT NULL;
    CREATE TABLE sessions (
        token_hash  BLOB PRIMARY KEY,
        role        TEXT NOT NULL,
        subject     TEXT NOT NULL,
        chat_id     TEXT,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_expiry ON sessions(expires_at);
    "#,
    // v2: the customer's name from a verified identity token, shown to officers.
    "ALTER TABLE chats ADD COLUMN customer_name TEXT;",
    // v3: an officer can be disabled by the admin, which revokes all of their sessions
    // (found by subject).
    r#"
    ALTER TABLE officers ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX sessions_by_subject ON sessions(role, subject);
    "#,
];

/// The schema version (`PRAGMA user_version`) this build migrates SQLite files to.
pub const SQLITE_SCHEMA_VERSION: usize = MIGRATIONS.len();

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
        let writer = Writer {
            conn: Some(conn),
            reopen: Some(Reopen {
                path: path.clone(),
                durability: options.durability,
                readers: idle.clone(),
            }),
            stale: false,
        };
        let readers = ReadPool {
            path,
            idle,
            permits: Semaphore::new(options.readers.max(1)),
        };
        Ok(Self::start(writer, Some(readers), options.max_batch))
    }

    /// A private in-memory database, gone when the store is dropped.
    pub fn in_memory() -> StoreResult<Self> {
        let conn = Connection::open_in_memory().map_err(classify)?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(classify)?;
        migrate(&conn)?;
        let writer = Writer {
            conn: Some(conn),
            reopen: None,
            stale: false,
        };
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
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let handle = std::thread::Builder::new()
            .name("chatcore-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, max_batch.max(1)))
            .expect("spawning the SQLite writer thread");
        Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(handle)),
                readers,
            }),
        }
    }

    /// Runs `f` on the writer inside the group transaction; answers after the commit.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
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
            .ok_or_else(closed)?;
        let (tx, rx) = oneshot::channel();
        let job = Box::new(Job {
            f: Some(f),
            result: None,
            reply: tx,
        });
        sender.send(job).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
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
        let _permit = pool.permits.acquire().await.map_err(|_| closed())?;
        let generation = pool.idle.generation.load(Ordering::Acquire);
        // A connection from before the writer's last reopen is dropped, not reused.
        let idle = pool
            .idle
            .idle
            .lock()
            .map_err(|_| StoreError::backend("reader pool lock poisoned"))?
            .pop()
            .filter(|(opened_in, _)| *opened_in == generation);
        let path = pool.path.clone();
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
        let retired = pool.idle.generation.load(Ordering::Acquire) != generation;
        if !retired && !matches!(result, Err(StoreError::Unavailable(_))) {
            if let Ok(mut idle) = pool.idle.idle.lock() {
                idle.push((generation, conn));
            }
        }
        result
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// Opens and configures the writer's connection to an existing (or, with
/// `SQLITE_OPEN_CREATE` in `create`, a new) file and brings its schema up to date.
/// SQLite opens a file it may not write read-only rather than failing; such a
/// connection serves the schema check, and every write on it fails as unavailable.
fn open_writer(path: &Path, create: OpenFlags, durability: Durability) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | create,
    )
    .map_err(classify)?;
    configure_writer(&conn, durability)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Keeps the `-wal` and `-shm` files when the connection closes (SQLite deletes them by
/// default when the last connection closes). A WAL database on a read-only file system
/// can be read only if both exist, so a server stopped cleanly can be started again on a
/// file system that has been made read-only meanwhile.
fn persist_wal(conn: &Connection) -> StoreResult<()> {
    conn.file_control(Some(rusqlite::MAIN_DB), FileControl::PersistWal(&mut 1))
        .map_err(classify)
}

fn configure_writer(conn: &Connection, durability: Durability) -> StoreResult<()> {
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(classify)?;
    persist_wal(conn)?;
    // journal_mode returns a row, so it is read rather than executed.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::backend(format!(
            "could not switch the database to WAL mode (got {mode})"
        )));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
    ))
    .map_err(classify)
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(classify)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(classify)?;
    persist_wal(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    // A current schema needs no write transaction, which a read-only database could not
    // start: such a database can still be opened and read.
    if schema_version(conn)? == MIGRATIONS.len() {
        return Ok(());
    }
    // Each step reads the version inside its own write transaction, so processes that
    // open a new file at the same moment apply each migration exactly once between them.
    loop {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(classify)?;
        let step = migrate_one(conn);
        match step {
            Ok(Some(version)) => {
                conn.execute_batch("COMMIT").map_err(classify)?;
                tracing::info!(version, "applied schema migration");
            }
            Ok(None) => {
                conn.execute_batch("COMMIT").map_err(classify)?;
                return Ok(());
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

fn schema_version(conn: &Connection) -> StoreResult<usize> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(classify)?
        .try_into()
        .map_err(|_| StoreError::backend("negative schema version"))
}

/// Applies the next migration inside the caller's transaction; `None` when up to date.
fn migrate_one(conn: &Connection) -> StoreResult<Option<usize>> {
    let current = schema_version(conn)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::backend(format!(
            "the database has schema version {current}, newer than this build's {}; \
             upgrade chatcore",
            MIGRATIONS.len()
        )));
    }
    let Some(sql) = MIGRATIONS.get(current) else {
        return Ok(None);
    };
    let version = current + 1;
    conn.execute_batch(&format!("{sql}; PRAGMA user_version = {version};"))
        .map_err(classify)?;
    Ok(Some(version))
}

/// Maps a SQLite error to the store's error classes: conditions that go away by
/// themselves or by an operator's action (full disk, read-only file, lock) are
/// `Unavailable`; unique-key violations are `Duplicate`.
fn classify(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(err, _) = &e {
        match err.code {
            ErrorCode::ConstraintViolation
                if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return StoreError::Duplicate;
            }
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory => return StoreError::Unavailable(Box::new(e)),
            _ => {}
        }
    }
    StoreError::Backend(Box::new(e))
}

// ---------------------------------------------------------------------------------------
// The writer thread and its group commit.

/// A write queued for the writer thread: `run` executes its statements inside the open
/// transaction, `finish` answers the caller once the transaction's fate is known.
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> bool;
    /// Whether the job's own statements met a storage fault.
    fn met_fault(&self) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Job<T, F> {
    f: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> WriteJob for Job<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let r = f(conn);
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn met_fault(&self) -> bool {
        matches!(self.result, Some(Err(StoreError::Unavailable(_))))
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let answer = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            // The batch failed (or never ran): no job in it is acknowledged.
            (_, Err(e)) => Err(replicate(e)),
            (None, Ok(())) => Err(StoreError::backend("write job did not run")),
        };
        // The caller may have gone away (its request was cancelled); the write stands.
        let _ = self.reply.send(answer);
    }
}

/// The same error again, for each job of a failed batch (`StoreError` is not `Clone`:
/// its source is kept as text).
fn replicate(e: &StoreError) -> StoreError {
    match e {
        StoreError::Duplicate => StoreError::Duplicate,
        StoreError::Unavailable(src) => StoreError::Unavailable(src.to_string().into()),
        StoreError::Backend(src) => StoreError::Backend(src.to_string().into()),
    }
}

/// The writer thread's connection, and how to replace it after a storage fault.
struct Writer {
    /// `None` after a failed reopen, until one succeeds.
    conn: Option<Connection>,
    /// `None` for an in-memory database, which cannot be reopened.
    reopen: Option<Reopen>,
    /// The connection met a storage fault: replace it before the next batch.
    stale: bool,
}

struct Reopen {
    path: PathBuf,
    durability: Durability,
    /// The read pool's idle connections, retired with the writer's.
    readers: Arc<IdleReaders>,
}

impl Writer {
    /// Runs one batch in one transaction and marks the connection stale when the batch
    /// or any of its jobs met a storage fault.
    fn run(&mut self, batch: &mut [Box<dyn WriteJob>]) -> StoreResult<()> {
        let conn = self.connection()?;
        let outcome = run_batch(conn, batch).map_err(classify);
        let fault = matches!(outcome, Err(StoreError::Unavailable(_)))
            || batch.iter().any(|j| j.met_fault());
        if fault && self.reopen.is_some() {
            self.stale = true;
        }
        outcome
    }

    /// The connection to run the next batch on, replaced first if it met a fault.
    /// Some faults stick to a connection (a file SQLite opened read-only stays so after
    /// the file system is writable again), and a fresh one costs well under a
    /// millisecond, so every fault replaces it rather than guessing which ones stick.
    fn connection(&mut self) -> StoreResult<&Connection> {
        if let Some(reopen) = &self.reopen {
            if self.stale || self.conn.is_none() {
                // Every connection is closed first, so that the new one shares no state
                // (such as a read-only `-shm` mapping) with those that met the fault.
                self.conn = None;
                reopen.readers.retire_all();
                // No SQLITE_OPEN_CREATE: a file that went away must not come back empty.
                let conn = open_writer(&reopen.path, OpenFlags::empty(), reopen.durability)?;
                // A connection that is still read-only is replaced again after the
                // next batch, whose writes it fails.
                self.stale = false;
                self.conn = Some(conn);
                tracing::info!("reopened the database after a storage fault");
            }
        }
        self.conn.as_ref().ok_or_else(closed)
    }

    /// Folds the WAL back into the main file and closes.
    fn close(self) {
        let Some(conn) = self.conn else { return };
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "checkpoint at close failed");
        }
        if let Err((_, e)) = conn.close() {
            tracing::warn!(error = %e, "closing the SQLite writer failed");
        }
    }
}

fn writer_loop(mut writer: Writer, mut rx: mpsc::Receiver<Box<dyn WriteJob>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = writer.run(&mut batch);
        for job in batch.drain(..) {
            job.finish(outcome.as_ref().map(|_| ()));
        }
    }
    // All senders are gone.
    writer.close();
}

/// Runs every job of the batch in one transaction, each in a savepoint; commits.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), rusqlite::Error> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        let step = conn.execute_batch("SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                conn.execute_batch("RELEASE job")
            } else {
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            }
        });
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Row mapping.

macro_rules! chat_columns {
    () => {
        "id, customer_id, assigned_officer_id, status, created_at, customer_name"
    };
}
macro_rules! message_columns {
    () => {
        "id, chat_id, seq, sender_type, sender_id, content, created_at, client_message_id"
    };
}

// The statements on hot paths, as constants: prepared once per connection and cached,
// and checked by `hot_queries_use_an_index_and_never_sort` below.
const SQL_CHAT_BY_ID: &str = concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = ?1");
const SQL_CHAT_BY_CUSTOMER: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE customer_id = ?1"
);
const SQL_RENAME_CUSTOMER: &str =
    "UPDATE chats SET customer_name = ?2 WHERE customer_id = ?1 AND customer_name IS NOT ?2";
const SQL_QUEUE: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats INDEXED BY chats_queue",
    " WHERE assigned_officer_id IS NULL ORDER BY created_at, id LIMIT ?1"
);
const SQL_OFFICER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats INDEXED BY chats_by_officer",
    " WHERE assigned_officer_id = ?1 ORDER BY created_at, id LIMIT ?2"
);
const SQL_CLAIM: &str = concat!(
    "UPDATE chats SET assigned_officer_id = ?2, status = 'assigned'",
    " WHERE id = ?1 AND assigned_officer_id IS NULL RETURNING ",
    chat_columns!()
);
const SQL_IDEMPOTENT_ORIGINAL: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND sender_type = ?2 AND sender_id = ?3",
    " AND client_message_id = ?4"
);
const SQL_NEXT_SEQ: &str =
    "UPDATE chats SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq";
const SQL_PAGE_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3"
);
const SQL_PAGE_BEFORE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
);
const SQL_SESSION: &str = "SELECT role, subject, chat_id, created_at, expires_at
     FROM sessions WHERE token_hash = ?1";

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
}

fn chat_from_row(r: &Row<'_>) -> rusqlite::Result<Chat> {
    let id: String = r.get(0)?;
    let customer: String = r.get(1)?;
    let officer: Option<String> = r.get(2)?;
    let status: String = r.get(3)?;
    Ok(Chat {
        id: ChatId::parse(&id).map_err(|_| corrupt("chats.id"))?,
        customer_id: CustomerId::parse(customer).map_err(|_| corrupt("chats.customer_id"))?,
        assigned_officer_id: officer
            .map(OfficerId::parse)
            .transpose()
            .map_err(|_| corrupt("chats.assigned_officer_id"))?,
        status: ChatStatus::parse(&status).ok_or_else(|| corrupt("chats.status"))?,
        created_at: Timestamp::from_unix_millis(r.get(4)?),
        customer_name: r.get(5)?,
    })
}

fn message_from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    let id: String = r.get(0)?;
    let chat: String = r.get(1)?;
    let sender_type: String = r.get(3)?;
    Ok(Message {
        id: MessageId::parse(&id).map_err(|_| corrupt("messages.id"))?,
        chat_id: ChatId::parse(&chat).map_err(|_| corrupt("messages.chat_id"))?,
        seq: r.get::<_, i64>(2)? as u64,
        sender_type: SenderType::parse(&sender_type)
            .ok_or_else(|| corrupt("messages.sender_type"))?,
        sender_id: r.get(4)?,
        content: r.get(5)?,
        created_at: Timestamp::from_unix_millis(r.get(6)?),
        client_message_id: r.get(7)?,
    })
}

fn officer_from_row(r: &Row<'_>) -> rusqlite::Result<OfficerRecord> {
    let id: String = r.get(0)?;
    Ok(OfficerRecord {
        officer: Officer {
            id: OfficerId::parse(id).map_err(|_| corrupt("officers.id"))?,
            display_name: r.get(1)?,
            created_at: Timestamp::from_unix_millis(r.get(3)?),
            disabled: r.get(4)?,
        },
        password_hash: r.get(2)?,
    })
}

fn chat_by_id(conn: &Connection, id: &ChatId) -> rusqlite::Result<Option<Chat>> {
    conn.prepare_cached(SQL_CHAT_BY_ID)?
        .query_row([id.to_string()], chat_from_row)
        .optional()
}

fn seq_param(v: Option<u64>, default: i64) -> i64 {
    v.map_or(default, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()> {
        let o = officer.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO officers (id, display_name, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    o.officer.id.as_str(),
                    o.officer.display_name,
                    o.password_hash,
                    o.officer.created_at.unix_millis()
                ])
            })
            .map(|_| ())
            .map_err(classify)
        })
        .await
    }

    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT id, display_name, password_hash, created_at, disabled FROM officers
                 WHERE id = ?1",
            )
            .and_then(|mut st| st.query_row([id.as_str()], officer_from_row).optional())
            .map_err(classify)
        })
        .await
    }

    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, display_name, password_hash, created_at, disabled FROM officers
                     ORDER BY id",
                )
                .map_err(classify)?;
            let rows = st
                .query_map([], officer_from_row)
                .map_err(classify)?
                .map(|r| r.map(|o| o.officer))
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        let new = new.clone();
        self.write(move |c| {
            let status = if new.assigned_officer_id.is_some() {
                ChatStatus::Assigned
            } else {
                ChatStatus::Pending
            };
            let inserted = c
                .prepare_cached(
                    "INSERT INTO chats (id, customer_id, assigned_officer_id, status, created_at,
                                        customer_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(customer_id) DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        new.id.to_string(),
                        new.customer_id.as_str(),
                        new.assigned_officer_id.as_ref().map(OfficerId::as_str),
                        status.as_str(),
                        new.created_at.unix_millis(),
                        new.customer_name
                    ])
                })
                .map_err(classify)?;
            if inserted == 0 && new.customer_name.is_some() {
                c.prepare_cached(SQL_RENAME_CUSTOMER)
                    .and_then(|mut st| {
                        st.execute(params![new.customer_id.as_str(), new.customer_name])
                    })
                    .map_err(classify)?;
            }
            let chat = c
                .prepare_cached(SQL_CHAT_BY_CUSTOMER)
                .and_then(|mut st| st.query_row([new.customer_id.as_str()], chat_from_row))
                .map_err(classify)?;
            Ok((chat, inserted == 1))
        })
        .await
    }

    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        let id = *id;
        self.read(move |c| chat_by_id(c, &id).map_err(classify))
            .await
    }

    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_QUEUE).map_err(classify)?;
            let rows = st
                .query_map([i64::from(limit)], chat_from_row)
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn officer_chats(&self, officer: &OfficerId, limit: u32) -> StoreResult<Vec<Chat>> {
        let officer = officer.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_OFFICER_CHATS).map_err(classify)?;
            let rows = st
                .query_map(params![officer.as_str(), i64::from(limit)], chat_from_row)
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn claim_chat(&self, chat: &ChatId, officer: &OfficerId) -> StoreResult<ClaimOutcome> {
        let (chat, officer) = (*chat, officer.clone());
        self.write(move |c| {
            // The one conditional update that decides a race: only a pending chat changes.
            let claimed = c
                .prepare_cached(SQL_CLAIM)
                .and_then(|mut st| {
                    st.query_row(params![chat.to_string(), officer.as_str()], chat_from_row)
                        .optional()
                })
                .map_err(classify)?;
            if let Some(chat) = claimed {
                return Ok(ClaimOutcome::Claimed(chat));
            }
            Ok(match chat_by_id(c, &chat).map_err(classify)? {
                None => ClaimOutcome::NotFound,
                Some(existing) if existing.assigned_officer_id.as_ref() == Some(&officer) => {
                    ClaimOutcome::AlreadyOwned(existing)
                }
                Some(existing) => ClaimOutcome::TakenByOther(existing),
            })
        })
        .await
    }

    async fn append_message(&self, message: &NewMessage) -> StoreResult<AppendOutcome> {
        let m = message.clone();
        self.write(move |c| {
            let chat_id = m.chat_id.to_string();
            if let Some(key) = &m.client_message_id {
                let original = c
                    .prepare_cached(SQL_IDEMPOTENT_ORIGINAL)
                    .and_then(|mut st| {
                        st.query_row(
                            params![chat_id, m.sender_type.as_str(), m.sender_id, key],
                            message_from_row,
                        )
                        .optional()
                    })
                    .map_err(classify)?;
                if let Some(original) = original {
                    return Ok(AppendOutcome::Duplicate(original));
                }
            }
            let seq: i64 = c
                .prepare_cached(SQL_NEXT_SEQ)
                .and_then(|mut st| st.query_row([&chat_id], |r| r.get(0)).optional())
                .map_err(classify)?
                .ok_or_else(|| StoreError::backend("append to a chat that does not exist"))?;
            c.prepare_cached(
                "INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content,
                                       created_at, client_message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    chat_id,
                    seq,
                    m.id.to_string(),
                    m.sender_type.as_str(),
                    m.sender_id,
                    m.content,
                    m.created_at.unix_millis(),
                    m.client_message_id
                ])
            })
            .map_err(classify)?;
            Ok(AppendOutcome::Created(Message {
                id: m.id,
                chat_id: m.chat_id,
                seq: seq as u64,
                sender_type: m.sender_type,
                sender_id: m.sender_id,
                content: m.content,
                created_at: m.created_at,
                client_message_id: m.client_message_id,
            }))
        })
        .await
    }

    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        let (chat, page) = (chat.to_string(), *page);
        self.read(move |c| {
            let after = seq_param(page.after, 0);
            let limit = i64::from(page.limit);
            // Rows are read one by one and the page stops at its byte cap, so a window of
            // huge messages is not read whole.
            if page.before.is_some() {
                let before = seq_param(page.before, i64::MAX);
                let mut st = c.prepare_cached(SQL_PAGE_BEFORE).map_err(classify)?;
                let rows = st
                    .query_map(params![chat, after, before, limit], message_from_row)
                    .map_err(classify)?;
                let mut out = fill_page(rows, page.max_bytes).map_err(classify)?;
                out.reverse();
                Ok(out)
            } else {
                let mut st = c.prepare_cached(SQL_PAGE_AFTER).map_err(classify)?;
                let rows = st
                    .query_map(params![chat, after, limit], message_from_row)
                    .map_err(classify)?;
                fill_page(rows, page.max_bytes).map_err(classify)
            }
        })
        .await
    }

    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        let chat = chat.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT last_seq FROM chats WHERE id = ?1")
                .and_then(|mut st| st.query_row([chat], |r| r.get::<_, i64>(0)).optional())
                .map(|v| v.unwrap_or(0) as u64)
                .map_err(classify)
        })
        .await
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<bool> {
        let s = session.clone();
        self.write(move |c| {
            let (role, subject, chat) = match &s.subject {
                SessionSubject::Officer(id) => ("officer", id.to_string(), None),
                SessionSubject::Customer {
                    customer_id,
                    chat_id,
                } => (
                    "customer",
                    customer_id.to_string(),
                    Some(chat_id.to_string()),
                ),
            };
            // On the one writer, the check and the insert are one step: a disable cannot
            // fall between them.
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, role, subject, chat_id, created_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE ?2 <> 'officer'
                    OR EXISTS (SELECT 1 FROM officers WHERE id = ?3 AND disabled = 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &s.token_hash.0[..],
                    role,
                    subject,
                    chat,
                    s.created_at.unix_millis(),
                    s.expires_at.unix_millis()
                ])
            })
            .map(|n| n == 1)
            .map_err(classify)
        })
        .await
    }

    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let hash = *token_hash;
        self.read(move |c| {
            let row = c
                .prepare_cached(SQL_SESSION)
                .and_then(|mut st| {
                    st.query_row([&hash.0[..]], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(classify)?;
            let Some((role, subject, chat, created, expires)) = row else {
                return Ok(None);
            };
            let bad = || StoreError::backend("malformed session row");
            let subject = match (role.as_str(), chat) {
                ("officer", _) => {
                    SessionSubject::Officer(OfficerId::parse(subject).map_err(|_| bad())?)
                }
                ("customer", Some(chat)) => SessionSubject::Customer {
                    customer_id: CustomerId::parse(subject).map_err(|_| bad())?,
                    chat_id: ChatId::parse(&chat).map_err(|_| bad())?,
                },
                _ => return Err(bad()),
            };
            Ok(Some(SessionRecord {
                token_hash: hash,
                subject,
                created_at: Timestamp::from_unix_millis(created),
                expires_at: Timestamp::from_unix_millis(expires),
            }))
        })
        .await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool> {
        let hash = *token_hash;
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .and_then(|mut st| st.execute([&hash.0[..]]))
                .map(|n| n > 0)
                .map_err(classify)
        })
        .await
    }

    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        let officer = officer.clone();
        self.write(move |c| {
            let record = c
                .prepare_cached(
                    "UPDATE officers SET disabled = ?2 WHERE id = ?1
                     RETURNING id, display_name, password_hash, created_at, disabled",
                )
                .and_then(|mut st| {
                    st.query_row(params![officer.as_str(), disabled], officer_from_row)
                        .optional()
                })
                .map_err(classify)?;
            let Some(record) = record else {
                return Ok(None);
            };
            let mut revoked = Vec::new();
            if disabled {
                let mut st = c
                    .prepare_cached(
                        "DELETE FROM sessions WHERE role = 'officer' AND subject = ?1
                         RETURNING token_hash",
                    )
                    .map_err(classify)?;
                let rows = st
                    .query_map([officer.as_str()], |r| r.get::<_, Vec<u8>>(0))
                    .map_err(classify)?;
                for row in rows {
                    let bytes = row.map_err(classify)?;
                    let hash: [u8; 32] = bytes
                        .try_into()
                        .map_err(|_| StoreError::backend("malformed session token hash"))?;
                    revoked.push(TokenHash(hash));
                }
            }
            Ok(Some((record.officer, revoked)))
        })
        .await
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([now.unix_millis()]))
                .map(|n| n as u64)
                .map_err(classify)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(classify))
            .await?;
        // A write proves the writer is alive and the file is writable. An empty
        // transaction writes nothing, so it would succeed on a full disk or a read-only
        // file; setting `user_version` to its own value writes one page for real.
        self.write(|c| {
            let version = schema_version(c)?;
            c.execute_batch(&format!("PRAGMA user_version = {version}"))
                .map_err(classify)
        })
        .await
    }

    async fn close(&self) -> StoreResult<()> {
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
            pool.permits.close();
            pool.idle.retire_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_opening_a_new_file_at_once_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let conn = Connection::open(&path).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(10))
                        .unwrap();
                    barrier.wait();
                    migrate(&conn)
                })
            })
            .collect();
        for open in opens {
            open.join()
                .unwrap()
                .expect("a concurrent open failed to migrate");
        }
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, SQLITE_SCHEMA_VERSION);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute_batch("PRAGMA user_version = 999").unwrap();
        let err = migrate(&conn).unwrap_err().to_string();
        assert!(err.contains("newer than this build"), "{err}");
    }

    /// Every hot statement must find its rows through an index (or the primary key) and
    /// deliver them in index order: no full scan of a table, no sort. That is what keeps
    /// the queue, an officer's chats and a page of messages as cheap at ten million
    /// messages as at ten.
    #[test]
    fn hot_queries_use_an_index_and_never_sort() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        for (name, sql) in [
            ("chat by id", SQL_CHAT_BY_ID),
            ("chat by customer", SQL_CHAT_BY_CUSTOMER),
            ("rename customer", SQL_RENAME_CUSTOMER),
            ("queue", SQL_QUEUE),
            ("officer chats", SQL_OFFICER_CHATS),
            ("claim", SQL_CLAIM),
            ("idempotency lookup", SQL_IDEMPOTENT_ORIGINAL),
            ("next seq", SQL_NEXT_SEQ),
            ("page after", SQL_PAGE_AFTER),
            ("page before", SQL_PAGE_BEFORE),
            ("session", SQL_SESSION),
        ] {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = st
                .query_map(
                    rusqlite::params_from_iter(std::iter::repeat_n(
                        rusqlite::types::Null,
                        st.parameter_count(),
                    )),
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(
                plan.contains("USING INDEX")
                    || plan.contains("USING PRIMARY KEY")
                    || plan.contains("USING COVERING INDEX"),
                "{name}: no index in plan: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{name}: sorts: {plan}");
            // A SCAN is acceptable only of the queue's partial index, which holds
            // nothing but pending chats and is read in order up to the limit.
            if plan.contains("SCAN") {
                assert!(
                    plan.contains("SCAN chats USING INDEX chats_queue"),
                    "{name}: scans: {plan}"
                );
            }
        }
    }
}
