//! The writer thread: the only writing connection, its group commit (every write queued
//! at one moment in one transaction, each in its own savepoint, the webhook events they
//! made written after them; a batch of nothing but writes a crash may lose, not
//! fsynced: [`WriteJob::durable`]), and its replacement after a storage fault. It must not answer a caller before the commit that holds the
//! caller's write, nor run SQLite on an async worker thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use super::error::classify;
use super::pool::IdleReaders;
use super::schema::migrate;
use super::{Durability, persist_wal};
use crate::store::{StoreError, StoreResult};

const WRITE_QUEUE: usize = 4096;

/// Opens and configures the writer's connection to an existing (or, with
/// `SQLITE_OPEN_CREATE` in `create`, a new) file and brings its schema up to date.
/// SQLite opens a file it may not write read-only rather than failing; such a
/// connection serves the schema check, and every write on it fails as unavailable.
pub(super) fn open_writer(
    path: &Path,
    create: OpenFlags,
    durability: Durability,
) -> StoreResult<Connection> {
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

fn configure_writer(conn: &Connection, durability: Durability) -> StoreResult<()> {
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(classify)?;
    plan_statements_once(conn)?;
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

/// A write queued for the writer thread: `run` executes its statements inside the open
/// transaction, `finish` answers the caller once the transaction's fate is known.
pub(super) trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> bool;
    /// Whether its commit must reach the disk before it is answered (every write a
    /// client is told of). A batch of jobs that all answer `false` (the webhook
    /// deliveries' own bookkeeping, which a crash may lose: the events are then sent
    /// again) commits without its own fsync; the next durable commit's fsync covers it.
    fn durable(&self) -> bool;
    /// Whether the job's own statements met a storage fault.
    fn met_fault(&self) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

/// A job for `f`, whose answer goes to `reply`.
pub(super) fn job<T, F>(
    f: F,
    durable: bool,
    reply: oneshot::Sender<StoreResult<T>>,
) -> Box<dyn WriteJob>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    Box::new(Job {
        f: Some(f),
        durable,
        result: None,
        reply,
    })
}

struct Job<T, F> {
    f: Option<F>,
    durable: bool,
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

    fn durable(&self) -> bool {
        self.durable
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
pub(super) struct Writer {
    /// `None` after a failed reopen, until one succeeds.
    conn: Option<Connection>,
    /// `None` for an in-memory database, which cannot be reopened.
    reopen: Option<Reopen>,
    /// The connection met a storage fault: replace it before the next batch.
    stale: bool,
}

/// What a file database's writer needs to open its connection again.
pub(super) struct Reopen {
    pub(super) path: PathBuf,
    pub(super) durability: Durability,
    /// The read pool's idle connections, retired with the writer's.
    pub(super) readers: Arc<IdleReaders>,
}

impl Writer {
    /// A writer on `conn`; `reopen` is `None` for an in-memory database.
    pub(super) fn new(conn: Connection, reopen: Option<Reopen>) -> Self {
        Self {
            conn: Some(conn),
            reopen,
            stale: false,
        }
    }

    /// Starts the writer thread, which commits up to `max_batch` queued writes at a
    /// time and closes the connection once every sender is gone.
    pub(super) fn spawn(
        self,
        max_batch: usize,
    ) -> (mpsc::Sender<Box<dyn WriteJob>>, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let handle = std::thread::Builder::new()
            .name("chatcore-sqlite-writer".into())
            .spawn(move || writer_loop(self, rx, max_batch.max(1)))
            .expect("spawning the SQLite writer thread");
        (tx, handle)
    }

    /// Runs one batch in one transaction and marks the connection stale when the batch
    /// or any of its jobs met a storage fault.
    fn run(&mut self, batch: &mut [Box<dyn WriteJob>]) -> StoreResult<()> {
        let full = self
            .reopen
            .as_ref()
            .is_some_and(|r| r.durability == Durability::Full);
        let conn = self.connection()?;
        let outcome = if full && !batch.iter().any(|j| j.durable()) {
            run_lazily(conn, batch)
        } else {
            run_batch(conn, batch)
        };
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
        self.conn.as_ref().ok_or_else(StoreError::closed)
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
        crate::metrics::write_batch(batch.len());
        let outcome = writer.run(&mut batch);
        for job in batch.drain(..) {
            job.finish(outcome.as_ref().map(|_| ()));
        }
    }
    // All senders are gone.
    writer.close();
}

/// Statements each connection keeps prepared: more than the writer's (and a reader's)
/// distinct statements, so that none is parsed again per use (rusqlite's default, 16,
/// is fewer than the writer runs, and every miss parses anew).
pub(super) const STATEMENT_CACHE: usize = 256;

/// Keeps every statement prepared once per connection: a cache larger than the
/// statements it runs, and SQLite's query planner stability guarantee. Without it, a
/// statement whose bound value could decide whether a partial index applies (such as
/// `sender_type = ?2` beside `messages_first_reply`'s `WHERE sender_type = 'officer'`) is
/// planned again every time that value is bound: once per send.
pub(super) fn plan_statements_once(conn: &Connection) -> StoreResult<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
    .map_err(classify)
}

/// Runs one transaction-control statement, prepared once per connection.
fn control(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs a batch of jobs none of which needs its commit on disk at once (see
/// [`WriteJob::durable`]) with `synchronous = NORMAL`: the commit is in the WAL file
/// before the jobs are answered, as always, but not fsynced. Frames go to the WAL in
/// commit order, so the next durable commit's fsync makes this one durable too; a crash
/// before it may lose this commit whole (the WAL's checksums end recovery at the last
/// whole commit), never a later one.
fn run_lazily(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> StoreResult<()> {
    control(conn, "PRAGMA synchronous = NORMAL").map_err(classify)?;
    let outcome = run_batch(conn, batch);
    // Back to FULL before anything else runs; a connection that cannot be set back is
    // replaced (a storage fault) rather than left committing without fsyncs. Its jobs
    // are then told they failed although they may have committed: for these writes that
    // only delays the lanes concerned until their leases expire.
    match control(conn, "PRAGMA synchronous = FULL") {
        Ok(()) => outcome,
        Err(e) => Err(StoreError::Unavailable(
            format!("cannot restore synchronous = FULL: {e}").into(),
        )),
    }
}

/// Runs every job of the batch in one transaction, each in a savepoint (a job that
/// fails leaves nothing, its webhook events included); commits.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> StoreResult<()> {
    control(conn, "BEGIN IMMEDIATE").map_err(classify)?;
    for job in batch.iter_mut() {
        let step = control(conn, "SAVEPOINT job").and_then(|()| {
            if job.run(conn) {
                control(conn, "RELEASE job")
            } else {
                control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
            }
        });
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(classify(e));
        }
    }
    if let Err(e) = control(conn, "COMMIT").map_err(classify) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::ids::ChatId;
    use crate::model::Timestamp;
    use crate::store::sqlite::webhooks::write_outbox;
    use crate::webhooks::OutboxEvent;

    /// A database with one webhook that takes every event.
    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        conn.execute(
            "INSERT INTO webhooks (id, url, secret, events, created_at)
             VALUES ('w', 'http://receiver', 'secret', ' chat_updated new_message ', 0)",
            [],
        )
        .unwrap();
        conn
    }

    /// A chat's change (a message's event has no row: its lane's cursor reads it).
    fn event(chat: &ChatId, n: u32) -> OutboxEvent {
        OutboxEvent {
            event_id: format!("event-{n}"),
            kind: "chat_updated",
            chat_id: *chat,
            created_at: Timestamp::from_unix_millis(1_000),
            body: format!("{{\"n\":{n}}}"),
            position: u64::from(n),
        }
    }

    /// A job that makes `events` (and runs `then`), then fails when `fail` says so.
    fn making(
        events: Vec<OutboxEvent>,
        then: &'static str,
        fail: bool,
    ) -> (Box<dyn WriteJob>, oneshot::Receiver<StoreResult<()>>) {
        let (reply, answer) = oneshot::channel();
        let job = job(
            move |c: &Connection| {
                write_outbox(c, || events)?;
                if !then.is_empty() {
                    c.execute_batch(then).map_err(classify)?;
                }
                if fail {
                    return Err(StoreError::backend("the job's own failure"));
                }
                Ok(())
            },
            true,
            reply,
        );
        (job, answer)
    }

    /// A job that reads the connection's `synchronous` setting as it runs (1 NORMAL,
    /// 2 FULL), durable or not.
    fn reading_sync(durable: bool) -> (Box<dyn WriteJob>, oneshot::Receiver<StoreResult<i64>>) {
        let (reply, answer) = oneshot::channel();
        let job = job(
            |c: &Connection| {
                c.execute_batch("INSERT INTO nodes (id, seen_at) VALUES (hex(randomblob(8)), 1)")
                    .map_err(classify)?;
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map_err(classify)
            },
            durable,
            reply,
        );
        (job, answer)
    }

    /// A writer on a new file in `dir`, as a file store opens it.
    fn writer_on_file(dir: &tempfile::TempDir, durability: Durability) -> Writer {
        let path = dir.path().join("chat.db");
        let conn = open_writer(&path, OpenFlags::SQLITE_OPEN_CREATE, durability).unwrap();
        Writer::new(
            conn,
            Some(Reopen {
                path,
                durability,
                readers: Arc::new(IdleReaders::default()),
            }),
        )
    }

    #[test]
    fn only_a_batch_of_writes_a_crash_may_lose_commits_without_its_own_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer_on_file(&dir, Durability::Full);
        let mut batch = |jobs: Vec<bool>| -> Vec<i64> {
            let (mut batch, answers): (Vec<_>, Vec<_>) = jobs.into_iter().map(reading_sync).unzip();
            let outcome = writer.run(&mut batch);
            for job in batch {
                job.finish(outcome.as_ref().map(|_| ()));
            }
            outcome.unwrap();
            answers
                .into_iter()
                .map(|a| a.blocking_recv().unwrap().unwrap())
                .collect()
        };
        // Every job lazy: NORMAL for the batch.
        assert_eq!(batch(vec![false, false]), [1, 1]);
        // Back to FULL for the next batch, and a batch with one durable job is FULL
        // throughout, its lazy jobs too.
        assert_eq!(batch(vec![true]), [2]);
        assert_eq!(batch(vec![false, true, false]), [2, 2, 2]);
        assert_eq!(batch(vec![false]), [1]);
        assert_eq!(batch(vec![true]), [2]);
        // Every write committed.
        let conn = writer.connection().unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 8);
    }

    #[test]
    fn with_normal_durability_every_batch_stays_normal() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer_on_file(&dir, Durability::Normal);
        for durable in [false, true, false] {
            let (job, answer) = reading_sync(durable);
            let mut batch = vec![job];
            let outcome = writer.run(&mut batch);
            for job in batch {
                job.finish(outcome.as_ref().map(|_| ()));
            }
            assert_eq!(answer.blocking_recv().unwrap().unwrap(), 1);
        }
    }

    fn outbox(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT event_id FROM webhook_deliveries ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn run(conn: &Connection, jobs: Vec<Box<dyn WriteJob>>) -> StoreResult<()> {
        let mut batch = jobs;
        let outcome = run_batch(conn, &mut batch);
        for job in batch {
            job.finish(outcome.as_ref().map(|_| ()));
        }
        outcome
    }

    #[test]
    fn a_batchs_events_are_written_in_order_without_a_failed_jobs() {
        let conn = database();
        let (a, b) = (ChatId::new(), ChatId::new());
        let (first, first_said) = making(vec![event(&a, 1), event(&b, 2)], "", false);
        let (failed, failed_said) = making(vec![event(&a, 3)], "", true);
        let (last, last_said) = making(vec![event(&a, 4)], "", false);
        run(&conn, vec![first, failed, last]).unwrap();
        assert!(first_said.blocking_recv().unwrap().is_ok());
        assert!(failed_said.blocking_recv().unwrap().is_err());
        assert!(last_said.blocking_recv().unwrap().is_ok());
        assert_eq!(outbox(&conn), ["event-1", "event-2", "event-4"]);
        let lanes: i64 = conn
            .query_row("SELECT count(*) FROM webhook_lanes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(lanes, 2, "one lane per chat with deliveries");
    }

    /// A settlement batched after a change reads the outbox as the change left it: a
    /// change's row written at once, not after the batch's last job, or the settlement
    /// would read the messages after it without it.
    #[test]
    fn a_later_job_of_the_batch_reads_an_earlier_jobs_events() {
        let conn = database();
        let (change, change_said) = making(vec![event(&ChatId::new(), 1)], "", false);
        let seen = Arc::new(AtomicI64::new(-1));
        let (reply, read_said) = oneshot::channel();
        let read = {
            let seen = seen.clone();
            job(
                move |c: &Connection| {
                    let rows: i64 = c
                        .query_row("SELECT count(*) FROM webhook_deliveries", [], |r| r.get(0))
                        .map_err(classify)?;
                    seen.store(rows, Ordering::SeqCst);
                    Ok(())
                },
                false,
                reply,
            )
        };
        run(&conn, vec![change, read]).unwrap();
        assert!(change_said.blocking_recv().unwrap().is_ok());
        assert!(read_said.blocking_recv().unwrap().is_ok());
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }
}
