//! Versioned schema for PostgreSQL, applied in one transaction under an advisory lock so
//! that any number of nodes starting at once migrate exactly once. Entries are never
//! edited once released, only appended.

use chatcore::StoreError;
use chatcore::store::StoreResult;
use tokio_postgres::Client;

use crate::error::classify;

/// Key of the transaction-scoped advisory lock that serializes migrations ("chatmigr").
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772;

/// Entry `i` takes the database from version `i` to `i + 1` (recorded in
/// `schema_migrations`).
pub(crate) const MIGRATIONS: &[&str] = &[
    // v1: the same tables and indexes as the SQLite store. Ids are compared bytewise
    // (COLLATE "C") so that ordering by id matches the other stores whatever the
    // database's locale.
    r#"
    CREATE TABLE officers (
        id            TEXT COLLATE "C" PRIMARY KEY,
        display_name  TEXT,
        password_hash TEXT,
        created_at    BIGINT NOT NULL
    );
    CREATE TABLE chats (
        id                  TEXT COLLATE "C" PRIMARY KEY,
        customer_id         TEXT COLLATE "C" NOT NULL UNIQUE,
        assigned_officer_id TEXT COLLATE "C" REFERENCES officers(id),
        status              TEXT NOT NULL,
        created_at          BIGINT NOT NULL,
        last_seq            BIGINT NOT NULL DEFAULT 0
    );
    -- The queue: only pending chats are in this index, oldest first.
    CREATE INDEX chats_queue ON chats (created_at, id) WHERE assigned_officer_id IS NULL;
    CREATE INDEX chats_by_officer ON chats (assigned_officer_id, created_at, id)
        WHERE assigned_officer_id IS NOT NULL;
    -- A page of messages is one range scan of the primary key.
    CREATE TABLE messages (
        chat_id           TEXT COLLATE "C" NOT NULL REFERENCES chats(id),
        seq               BIGINT NOT NULL,
        id                TEXT COLLATE "C" NOT NULL UNIQUE,
        sender_type       TEXT NOT NULL,
        sender_id         TEXT NOT NULL,
        content           TEXT NOT NULL,
        created_at        BIGINT NOT NULL,
        client_message_id TEXT,
        PRIMARY KEY (chat_id, seq)
    );
    CREATE UNIQUE INDEX messages_idempotency
        ON messages (chat_id, sender_type, sender_id, client_message_id)
        WHERE client_message_id IS NOT NULL;
    CREATE TABLE sessions (
        token_hash  BYTEA PRIMARY KEY,
        role        TEXT NOT NULL,
        subject     TEXT NOT NULL,
        chat_id     TEXT,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL
    );
    CREATE INDEX sessions_expiry ON sessions (expires_at);
    "#,
    // v2: the customer's name from a verified identity token, shown to officers.
    "ALTER TABLE chats ADD COLUMN customer_name TEXT;",
    // v3: an officer can be disabled by the admin, which revokes all of their sessions
    // (found by subject).
    r#"
    ALTER TABLE officers ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX sessions_by_subject ON sessions (role, subject);
    "#,
    // v4: the chat lifecycle, as the SQLite store's v4. A customer has a history of
    // chats, at most one open (pending or assigned); chats know when they last changed
    // and when they were resolved; the queue is the pending chats; system entries record
    // their change as JSON.
    r#"
    ALTER TABLE chats DROP CONSTRAINT chats_customer_id_key;
    ALTER TABLE chats ADD COLUMN updated_at BIGINT;
    UPDATE chats c SET updated_at = COALESCE(
        (SELECT MAX(m.created_at) FROM messages m WHERE m.chat_id = c.id), c.created_at);
    ALTER TABLE chats ALTER COLUMN updated_at SET NOT NULL;
    ALTER TABLE chats ADD COLUMN resolved_at BIGINT;
    CREATE UNIQUE INDEX chats_open_per_customer ON chats (customer_id)
        WHERE status <> 'resolved';
    CREATE INDEX chats_by_customer ON chats (customer_id, created_at, id);
    DROP INDEX chats_queue;
    CREATE INDEX chats_queue ON chats (created_at, id) WHERE status = 'pending';
    ALTER TABLE messages ADD COLUMN event TEXT;
    "#,
    // v5: as the SQLite store's v5, an officer's chats by status, newest activity first.
    r#"
    DROP INDEX chats_by_officer;
    CREATE INDEX chats_by_officer ON chats (assigned_officer_id, status, updated_at, id)
        WHERE assigned_officer_id IS NOT NULL;
    "#,
    // v6: as the SQLite store's v6, an officer's capacity.
    "ALTER TABLE officers ADD COLUMN capacity INTEGER;",
    // v7: as the SQLite store's v7, whether an officer takes chats now.
    "ALTER TABLE officers ADD COLUMN availability TEXT NOT NULL DEFAULT 'available';",
    // v8: as the SQLite store's v8, presence and each officer's last assignment.
    r#"
    ALTER TABLE officers ADD COLUMN last_assigned_at BIGINT;
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        seen_at BIGINT NOT NULL
    );
    CREATE TABLE presence (
        officer_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        PRIMARY KEY (officer_id, node_id)
    );
    CREATE INDEX presence_by_node ON presence (node_id, officer_id);
    "#,
    // v9: as the SQLite store's v9, read marks.
    r#"
    ALTER TABLE chats ADD COLUMN customer_last_read_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE chats ADD COLUMN officer_last_read_seq BIGINT NOT NULL DEFAULT 0;
    "#,
    // v10: attachments, as the SQLite store's v10 (a message's file, found by its id
    // and by its bytes); and the bytes themselves (`PgBlobStore`), so that every node on
    // the database serves every attachment. A blob is a row per 256 KiB chunk, written
    // under its upload's id while it arrives (each chunk its own short statement, so an
    // upload holds no connection between chunks) and named by its SHA-256 in `blobs` in
    // one transaction at the end; an upload that never ends stays in `blob_uploads`
    // until a sweep removes it with its chunks. Chunks are stored as they come, never
    // compressed: documents are mostly compressed already.
    r#"
    ALTER TABLE messages ADD COLUMN attachment_id TEXT COLLATE "C";
    ALTER TABLE messages ADD COLUMN attachment_name TEXT;
    ALTER TABLE messages ADD COLUMN attachment_type TEXT;
    ALTER TABLE messages ADD COLUMN attachment_size BIGINT;
    ALTER TABLE messages ADD COLUMN attachment_sha256 TEXT COLLATE "C";
    CREATE UNIQUE INDEX messages_by_attachment ON messages (attachment_id)
        WHERE attachment_id IS NOT NULL;
    CREATE INDEX messages_by_blob ON messages (attachment_sha256)
        WHERE attachment_sha256 IS NOT NULL;
    CREATE TABLE blob_uploads (
        id          TEXT COLLATE "C" PRIMARY KEY,
        started_at  BIGINT NOT NULL
    );
    CREATE INDEX blob_uploads_by_start ON blob_uploads (started_at);
    CREATE TABLE blob_chunks (
        upload_id   TEXT COLLATE "C" NOT NULL,
        n           INTEGER NOT NULL,
        data        BYTEA NOT NULL,
        PRIMARY KEY (upload_id, n)
    );
    ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE blobs (
        sha256      TEXT COLLATE "C" PRIMARY KEY,
        upload_id   TEXT COLLATE "C" NOT NULL UNIQUE,
        size        BIGINT NOT NULL,
        chunk_size  INTEGER NOT NULL,
        touched_at  BIGINT NOT NULL
    );
    "#,
    // v11: each officer's open (assigned) chats as a counter on their row, kept by the
    // statements that change a chat's status or owner (a transition, a chat created
    // with its officer), under the officer's row lock. The capacity check reads it on
    // the row it locks, and routing's and the officer lists' reads no longer count
    // chats per officer. PostgreSQL only: the SQLite store's single writer counts on
    // its index as cheaply.
    r#"
    ALTER TABLE officers ADD COLUMN open_chats INTEGER NOT NULL DEFAULT 0
        CHECK (open_chats >= 0);
    UPDATE officers o SET open_chats = (SELECT count(*) FROM chats c
        WHERE c.assigned_officer_id = o.id AND c.status = 'assigned');
    "#,
    // v12: the desk report (store/report.rs): chats by creation and by resolution (its
    // durations read from the index alone), and each chat's first officer message.
    r#"
    CREATE INDEX chats_by_created ON chats (created_at);
    CREATE INDEX chats_by_resolved ON chats (resolved_at, created_at, assigned_officer_id)
        WHERE resolved_at IS NOT NULL;
    CREATE INDEX messages_first_reply ON messages (chat_id, seq)
        WHERE sender_type = 'officer';
    "#,
    // v13: the webhooks' outbox, as in SQLite (chatcore/src/store/webhooks.rs):
    // webhooks, one delivery per event per webhook (written in the change's own
    // transaction) and one lane per (webhook, chat) with deliveries pending, claimed
    // with FOR UPDATE SKIP LOCKED under a lease that expires.
    r#"
    CREATE TABLE webhooks (
        id          TEXT COLLATE "C" PRIMARY KEY,
        url         TEXT NOT NULL,
        secret      TEXT NOT NULL,
        events      TEXT NOT NULL,
        created_at  BIGINT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id              BIGSERIAL PRIMARY KEY,
        webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        chat_id         TEXT COLLATE "C" NOT NULL,
        event_id        TEXT NOT NULL,
        kind            TEXT NOT NULL,
        body            TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        queued_at       BIGINT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        last_attempt_at BIGINT,
        dead            BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX webhook_deliveries_lane ON webhook_deliveries (webhook_id, chat_id, id)
        WHERE NOT dead;
    CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (webhook_id, id) WHERE dead;
    CREATE TABLE webhook_lanes (
        webhook_id      TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        chat_id         TEXT COLLATE "C" NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        lease_until     BIGINT,
        lease_token     TEXT,
        last_event_at   BIGINT,
        PRIMARY KEY (webhook_id, chat_id)
    );
    CREATE INDEX webhook_lanes_due ON webhook_lanes (next_attempt_at);
    "#,
    // v14: a message's event is no longer a row of its own: the messages table is the
    // log, and each lane keeps a cursor (the last seq it delivered). A row is a chat's
    // change, or a message whose delivery failed, placed in its chat's order by
    // `after_seq` (after that message, before the next). Rows written before keep
    // after_seq 0: each is older than every message a cursor will read, and their ids
    // keep their order. Each lane that exists has every message so far as a row, or
    // delivered: its cursor starts at its chat's last message. Stop every node of the
    // older build before the first node of this one starts (docs/DEPLOY.md).
    r#"
    ALTER TABLE webhook_deliveries ADD COLUMN after_seq BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE webhook_lanes ADD COLUMN cursor_seq BIGINT NOT NULL DEFAULT 0;
    UPDATE webhook_lanes l SET cursor_seq =
        coalesce((SELECT c.last_seq FROM chats c WHERE c.id = l.chat_id), 0);
    DROP INDEX webhook_deliveries_lane;
    CREATE INDEX webhook_deliveries_lane
        ON webhook_deliveries (webhook_id, chat_id, after_seq, id) WHERE NOT dead;
    "#,
];

/// The schema version this build migrates databases to.
pub const PG_SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Brings the database up to [`PG_SCHEMA_VERSION`]; returns the versions applied.
pub(crate) async fn migrate(client: &mut Client) -> StoreResult<Vec<usize>> {
    let tx = client.transaction().await.map_err(classify)?;
    // Held until commit: a second node blocks here and then finds the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(classify)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(classify)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(classify)?
        .get(0);
    let current =
        usize::try_from(current).map_err(|_| StoreError::backend("negative schema version"))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::backend(format!(
            "the database has schema version {current}, newer than this build's {}; \
             upgrade chat-postgres",
            MIGRATIONS.len()
        )));
    }
    let mut applied = Vec::new();
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i + 1;
        tx.batch_execute(sql).await.map_err(classify)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(version as i32)],
        )
        .await
        .map_err(classify)?;
        applied.push(version);
    }
    tx.commit().await.map_err(classify)?;
    for version in &applied {
        tracing::info!(version, "applied PostgreSQL schema migration");
    }
    Ok(applied)
}
