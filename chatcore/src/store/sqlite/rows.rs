//! The SQL of the hot paths and the row mapping: the column lists, the statements that
//! read them (each checked for its query plan below) and how a row becomes a record. The
//! column lists and the mappers' column indices must agree; nothing here opens a
//! connection or starts a transaction.

use rusqlite::{Connection, OptionalExtension, Row};

use crate::ids::{ChatId, OfficerId};
use crate::model::{Chat, Message, SenderType};
use crate::store::{
    AttachmentColumns, ChatColumns, MalformedRow, MessageColumns, OfficerColumns, OfficerRecord,
};

macro_rules! chat_columns {
    () => {
        "id, customer_id, assigned_officer_id, status, created_at, customer_name, updated_at, \
         resolved_at, last_seq, customer_last_read_seq, officer_last_read_seq"
    };
}
/// An officer's columns, with how many open chats they hold (a count on the officer's
/// index range of `chats_by_officer`).
macro_rules! officer_columns {
    () => {
        "SELECT id, display_name, password_hash, created_at, disabled, capacity, \
         (SELECT count(*) FROM chats WHERE chats.assigned_officer_id = officers.id \
         AND chats.status = 'assigned'), availability, \
         EXISTS (SELECT 1 FROM presence WHERE presence.officer_id = officers.id) FROM officers"
    };
}
pub(super) use officer_columns;
macro_rules! message_columns {
    () => {
        "id, chat_id, seq, sender_type, sender_id, content, created_at, client_message_id, event, \
         attachment_id, attachment_name, attachment_type, attachment_size, attachment_sha256"
    };
}

// The statements on hot paths, as constants: prepared once per connection and cached,
// and checked by `hot_queries_use_an_index_and_never_sort` below.
pub(super) const SQL_CHAT_BY_ID: &str =
    concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = ?1");
pub(super) const SQL_CHAT_BY_CUSTOMER: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE customer_id = ?1 AND status <> 'resolved'"
);
pub(super) const SQL_RENAME_CUSTOMER: &str = "UPDATE chats SET customer_name = ?2
     WHERE customer_id = ?1 AND status <> 'resolved' AND customer_name IS NOT ?2";
pub(super) const SQL_QUEUE: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats INDEXED BY chats_queue",
    " WHERE status = 'pending' ORDER BY created_at, id LIMIT ?1"
);
// The queue's order alone: a covering range of `chats_queue`.
pub(super) const SQL_QUEUE_KEYS: &str = "SELECT created_at, id FROM chats INDEXED BY chats_queue
     WHERE status = 'pending' ORDER BY created_at, id LIMIT ?1";
// Officers who may be given a chat automatically (`?1`: the default capacity, a huge
// number for unlimited), fewest open chats first, then the longest since their last
// assignment (never assigned: first). Officers are few: this reads them all.
pub(super) const SQL_ELIGIBLE_OFFICERS: &str = "SELECT id, display_name, password_hash,
     created_at, disabled, capacity, open, availability, 1 FROM (
       SELECT officers.*, (SELECT count(*) FROM chats WHERE chats.assigned_officer_id =
         officers.id AND chats.status = 'assigned') AS open
       FROM officers WHERE disabled = 0 AND availability = 'available'
       AND EXISTS (SELECT 1 FROM presence WHERE presence.officer_id = officers.id))
     WHERE open < COALESCE(capacity, ?1)
     ORDER BY open, last_assigned_at IS NOT NULL, last_assigned_at, id LIMIT ?2";
pub(super) const SQL_CUSTOMER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats INDEXED BY chats_by_customer",
    " WHERE customer_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
);
pub(super) const SQL_OFFICER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats INDEXED BY chats_by_officer",
    " WHERE assigned_officer_id = ?1 AND status = ?2",
    " ORDER BY updated_at DESC, id DESC LIMIT ?3"
);
pub(super) const SQL_TRANSITION: &str = concat!(
    "UPDATE chats SET status = ?4, assigned_officer_id = ?5, updated_at = ?6,",
    " resolved_at = CASE WHEN ?4 = 'resolved' THEN ?6 END, last_seq = last_seq + 1",
    " WHERE id = ?1 AND status = ?2 AND assigned_officer_id IS ?3 RETURNING ",
    chat_columns!()
);
pub(super) const SQL_INSERT_MESSAGE: &str = "INSERT INTO messages (chat_id, seq, id,
     sender_type, sender_id, content, created_at, client_message_id, event, attachment_id,
     attachment_name, attachment_type, attachment_size, attachment_sha256)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
pub(super) const SQL_ATTACHMENT: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages INDEXED BY messages_by_attachment WHERE attachment_id = ?1"
);
pub(super) const SQL_BLOB_IN_USE: &str = "SELECT 1 FROM messages INDEXED BY messages_by_blob
     WHERE attachment_sha256 = ?1 LIMIT 1";
pub(super) const SQL_IDEMPOTENT_ORIGINAL: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND sender_type = ?2 AND sender_id = ?3",
    " AND client_message_id = ?4"
);
// The next seq, taken only while the chat is still in the state the write was allowed on
// (`?3` NULL: any state).
pub(super) const SQL_NEXT_SEQ: &str = "UPDATE chats SET last_seq = last_seq + 1, updated_at = ?2
     WHERE id = ?1 AND (?3 IS NULL OR (status = ?3 AND assigned_officer_id IS ?4))
     RETURNING last_seq";
pub(super) const SQL_PAGE_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3"
);
/// A webhook lane's messages: its chat's after its cursor, when its webhook takes
/// `new_message` (none else: the cursor is NULL); `?1` the webhook, `?2` the chat.
pub(super) const SQL_LANE_MESSAGES: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?2 AND seq > (SELECT l.cursor_seq FROM webhook_lanes l",
    " JOIN webhooks w ON w.id = l.webhook_id WHERE l.webhook_id = ?1 AND l.chat_id = ?2",
    " AND w.events LIKE '% new_message %') ORDER BY seq ASC LIMIT ?3"
);
pub(super) const SQL_PAGE_BEFORE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
);
pub(super) const SQL_ENTRY: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = ?1 AND seq = ?2"
);
pub(super) const SQL_SESSION: &str = "SELECT role, subject, chat_id, created_at, expires_at
     FROM sessions WHERE token_hash = ?1";

/// A value the shared codec refuses, as the driver error a row mapper returns (it becomes
/// a `StoreError::Backend` through `classify`).
fn corrupt(e: MalformedRow) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, e.0.to_string(), rusqlite::types::Type::Text)
}

pub(super) fn chat_from_row(r: &Row<'_>) -> rusqlite::Result<Chat> {
    ChatColumns {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        assigned_officer_id: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
        customer_name: r.get(5)?,
        updated_at: r.get(6)?,
        resolved_at: r.get(7)?,
        last_seq: r.get(8)?,
        customer_last_read_seq: r.get(9)?,
        officer_last_read_seq: r.get(10)?,
    }
    .decode()
    .map_err(corrupt)
}

pub(super) fn message_from_row(r: &Row<'_>) -> rusqlite::Result<Message> {
    MessageColumns {
        id: r.get(0)?,
        chat_id: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        sender_type: r.get(3)?,
        sender_id: r.get(4)?,
        content: r.get(5)?,
        created_at: r.get(6)?,
        client_message_id: r.get(7)?,
        event: r.get(8)?,
        attachment: AttachmentColumns {
            id: r.get(9)?,
            name: r.get(10)?,
            content_type: r.get(11)?,
            size: r.get(12)?,
            sha256: r.get(13)?,
        },
    }
    .decode()
    .map_err(corrupt)
}

pub(super) fn officer_from_row(r: &Row<'_>) -> rusqlite::Result<OfficerRecord> {
    OfficerColumns {
        id: r.get(0)?,
        display_name: r.get(1)?,
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        disabled: r.get(4)?,
        capacity: r.get(5)?,
        open_chats: r.get(6)?,
        availability: r.get(7)?,
        connected: r.get(8)?,
    }
    .decode()
    .map_err(corrupt)
}

/// The message a sender stored in a chat under an idempotency key, if any.
pub(super) fn sent_message(
    conn: &Connection,
    chat: &str,
    sender_type: SenderType,
    sender_id: &str,
    key: &str,
) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(SQL_IDEMPOTENT_ORIGINAL)?
        .query_row(
            rusqlite::params![chat, sender_type.as_str(), sender_id, key],
            message_from_row,
        )
        .optional()
}

pub(super) fn officer_by_id(
    conn: &Connection,
    id: &OfficerId,
) -> rusqlite::Result<Option<OfficerRecord>> {
    conn.prepare_cached(concat!(officer_columns!(), " WHERE id = ?1"))?
        .query_row([id.as_str()], officer_from_row)
        .optional()
}

pub(super) fn chat_by_id(conn: &Connection, id: &ChatId) -> rusqlite::Result<Option<Chat>> {
    conn.prepare_cached(SQL_CHAT_BY_ID)?
        .query_row([id.to_string()], chat_from_row)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::migrate;

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
            ("customer's chats", SQL_CUSTOMER_CHATS),
            ("rename customer", SQL_RENAME_CUSTOMER),
            ("queue", SQL_QUEUE),
            ("queue keys", SQL_QUEUE_KEYS),
            ("officer chats", SQL_OFFICER_CHATS),
            ("transition", SQL_TRANSITION),
            ("idempotency lookup", SQL_IDEMPOTENT_ORIGINAL),
            ("next seq", SQL_NEXT_SEQ),
            ("page after", SQL_PAGE_AFTER),
            ("lane messages", SQL_LANE_MESSAGES),
            ("page before", SQL_PAGE_BEFORE),
            ("session", SQL_SESSION),
            ("entry", SQL_ENTRY),
            ("attachment", SQL_ATTACHMENT),
            ("blob in use", SQL_BLOB_IN_USE),
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
                    plan.contains("SCAN chats USING INDEX chats_queue")
                        || plan.contains("SCAN chats USING COVERING INDEX chats_queue"),
                    "{name}: scans: {plan}"
                );
            }
        }
    }
}
