//! The SQLite schema: the versioned migrations and how a connection is brought up to
//! date (`PRAGMA user_version`). It must not run anything but migrations; entries are
//! never edited once released, only appended.

use rusqlite::{Connection, OptionalExtension};

use super::error::classify;
use crate::store::{StoreError, StoreResult};

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
    // v4: the chat lifecycle. A customer has a history of chats, at most one open
    // (pending or assigned): the inline UNIQUE on customer_id goes, which SQLite can only
    // do by rebuilding the table (run with foreign keys off, checked before the commit).
    // Chats know when they last changed and when they were resolved; the queue is the
    // pending chats (a resolved chat may have no officer); system entries record their
    // change as JSON.
    r#"
    CREATE TABLE chats_v4 (
        id                  TEXT PRIMARY KEY,
        customer_id         TEXT NOT NULL,
        assigned_officer_id TEXT REFERENCES officers(id),
        status              TEXT NOT NULL,
        created_at          INTEGER NOT NULL,
        last_seq            INTEGER NOT NULL DEFAULT 0,
        customer_name       TEXT,
        updated_at          INTEGER NOT NULL,
        resolved_at         INTEGER
    );
    INSERT INTO chats_v4 (id, customer_id, assigned_officer_id, status, created_at, last_seq,
                          customer_name, updated_at)
        SELECT c.id, c.customer_id, c.assigned_officer_id, c.status, c.created_at, c.last_seq,
               c.customer_name,
               COALESCE((SELECT MAX(m.created_at) FROM messages m WHERE m.chat_id = c.id),
                        c.created_at)
        FROM chats c;
    DROP TABLE chats;
    ALTER TABLE chats_v4 RENAME TO chats;
    CREATE UNIQUE INDEX chats_open_per_customer ON chats(customer_id) WHERE status <> 'resolved';
    CREATE INDEX chats_by_customer ON chats(customer_id, created_at, id);
    CREATE INDEX chats_queue ON chats(created_at, id) WHERE status = 'pending';
    CREATE INDEX chats_by_officer ON chats(assigned_officer_id, created_at, id)
        WHERE assigned_officer_id IS NOT NULL;
    ALTER TABLE messages ADD COLUMN event TEXT;
    "#,
    // v5: an officer's chats are listed by status (open or resolved), newest activity
    // first, each list one range of this index.
    r#"
    DROP INDEX chats_by_officer;
    CREATE INDEX chats_by_officer ON chats(assigned_officer_id, status, updated_at, id)
        WHERE assigned_officer_id IS NOT NULL;
    "#,
    // v6: an officer's capacity, the most open chats they may hold (NULL: the server's
    // default).
    "ALTER TABLE officers ADD COLUMN capacity INTEGER;",
    // v7: whether an officer takes chats now.
    "ALTER TABLE officers ADD COLUMN availability TEXT NOT NULL DEFAULT 'available';",
    // v8: presence (which node holds live connections of which officer, and when each
    // node was last seen alive) and each officer's last assignment, for routing.
    r#"
    ALTER TABLE officers ADD COLUMN last_assigned_at INTEGER;
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE presence (
        officer_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        PRIMARY KEY (officer_id, node_id)
    ) WITHOUT ROWID;
    CREATE INDEX presence_by_node ON presence(node_id, officer_id);
    "#,
    // v9: read marks, the customer's and the officers', each the seq of the newest entry
    // they have seen.
    r#"
    ALTER TABLE chats ADD COLUMN customer_last_read_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE chats ADD COLUMN officer_last_read_seq INTEGER NOT NULL DEFAULT 0;
    "#,
    // v10: attachments. A message may carry a file, whose bytes are in the blob store
    // under its SHA-256; found by its id (a download) and by its bytes (the sweep of
    // blobs no message points at).
    r#"
    ALTER TABLE messages ADD COLUMN attachment_id TEXT;
    ALTER TABLE messages ADD COLUMN attachment_name TEXT;
    ALTER TABLE messages ADD COLUMN attachment_type TEXT;
    ALTER TABLE messages ADD COLUMN attachment_size INTEGER;
    ALTER TABLE messages ADD COLUMN attachment_sha256 TEXT;
    CREATE UNIQUE INDEX messages_by_attachment ON messages(attachment_id)
        WHERE attachment_id IS NOT NULL;
    CREATE INDEX messages_by_blob ON messages(attachment_sha256)
        WHERE attachment_sha256 IS NOT NULL;
    "#,
    // v11: the desk report (store/sqlite/report.rs): chats by creation and by resolution (its
    // durations read from the index alone), and each chat's first officer message.
    r#"
    CREATE INDEX chats_by_created ON chats(created_at);
    CREATE INDEX chats_by_resolved ON chats(resolved_at, created_at, assigned_officer_id)
        WHERE resolved_at IS NOT NULL;
    CREATE INDEX messages_first_reply ON messages(chat_id, seq)
        WHERE sender_type = 'officer';
    "#,
    // v12: the webhooks' outbox (chatcore/src/store/webhooks.rs): the webhooks, one
    // delivery per event per webhook (written in the change's own transaction), and one
    // lane per (webhook, chat) with deliveries pending, claimed by a lease.
    r#"
    CREATE TABLE webhooks (
        id          TEXT PRIMARY KEY,
        url         TEXT NOT NULL,
        secret      TEXT NOT NULL,
        events      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        chat_id         TEXT NOT NULL,
        event_id        TEXT NOT NULL,
        kind            TEXT NOT NULL,
        body            TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        queued_at       INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        last_attempt_at INTEGER,
        dead            INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_deliveries_lane ON webhook_deliveries(webhook_id, chat_id, id)
        WHERE dead = 0;
    CREATE INDEX webhook_deliveries_dead ON webhook_deliveries(webhook_id, id)
        WHERE dead = 1;
    CREATE TABLE webhook_lanes (
        webhook_id      TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        chat_id         TEXT NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        lease_until     INTEGER,
        lease_token     TEXT,
        PRIMARY KEY (webhook_id, chat_id)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_lanes_due ON webhook_lanes(next_attempt_at);
    "#,
    // v13: a message's event is no longer a row of its own: the messages table is the
    // log, and each lane keeps a cursor (the last seq it delivered). A row is a chat's
    // change, or a message whose delivery failed, placed in its chat's order by
    // `after_seq` (after that message, before the next). Rows written before keep
    // after_seq 0: each is older than every message a cursor will read, and their ids
    // keep their order. Each lane that exists has every message so far as a row, or
    // delivered: its cursor starts at its chat's last message.
    r#"
    ALTER TABLE webhook_deliveries ADD COLUMN after_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE webhook_lanes ADD COLUMN cursor_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE webhook_lanes SET cursor_seq =
        coalesce((SELECT last_seq FROM chats WHERE chats.id = webhook_lanes.chat_id), 0);
    DROP INDEX webhook_deliveries_lane;
    CREATE INDEX webhook_deliveries_lane
        ON webhook_deliveries(webhook_id, chat_id, after_seq, id) WHERE dead = 0;
    "#,
];

/// The schema version (`PRAGMA user_version`) this build migrates SQLite files to.
pub const SQLITE_SCHEMA_VERSION: usize = MIGRATIONS.len();

pub(super) fn migrate(conn: &Connection) -> StoreResult<()> {
    // A current schema needs no write transaction, which a read-only database could not
    // start: such a database can still be opened and read.
    if schema_version(conn)? == MIGRATIONS.len() {
        return Ok(());
    }
    // A migration may rebuild a table others refer to (v4): SQLite's way is with foreign
    // keys off (a no-op inside a transaction, so set here), checked before each commit.
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(classify)?;
    let migrated = migrate_steps(conn);
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(classify)?;
    migrated
}

fn migrate_steps(conn: &Connection) -> StoreResult<()> {
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

pub(super) fn schema_version(conn: &Connection) -> StoreResult<usize> {
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
    let broken: Option<String> = conn
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()
        .map_err(classify)?;
    if let Some(table) = broken {
        return Err(StoreError::backend(format!(
            "migration {version} left a broken reference in table {table}"
        )));
    }
    Ok(Some(version))
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
}
