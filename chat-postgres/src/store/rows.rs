//! The SQL of the PostgreSQL store and the row mapping: the column lists, the statements
//! that read them (the hot ones checked for their query plans below) and how a row
//! becomes a record. The column lists and the mappers' column indices must agree; nothing
//! here takes a connection from the pool.

use chatcore::store::{
    AttachmentColumns, ChatColumns, MalformedRow, MessageColumns, OfficerColumns, OfficerRecord,
    StoreResult,
};
use chatcore::{Chat, Message};
use tokio_postgres::Row;

use crate::error::classify;

macro_rules! chat_columns {
    () => {
        "id, customer_id, assigned_officer_id, status, created_at, customer_name, updated_at, \
         resolved_at, last_seq, customer_last_read_seq, officer_last_read_seq"
    };
}
macro_rules! message_columns {
    () => {
        "id, chat_id, seq, sender_type, sender_id, content, created_at, client_message_id, event, \
         attachment_id, attachment_name, attachment_type, attachment_size, attachment_sha256"
    };
}

pub(super) const SQL_CHAT_BY_ID: &str =
    concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1");
pub(super) const SQL_CHAT_BY_CUSTOMER: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE customer_id = $1 AND status <> 'resolved'"
);
pub(super) const SQL_INSERT_CHAT: &str = concat!(
    "INSERT INTO chats (id, customer_id, assigned_officer_id, status, created_at, customer_name,",
    " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $5)",
    " ON CONFLICT (customer_id) WHERE status <> 'resolved' DO NOTHING RETURNING ",
    chat_columns!()
);
pub(super) const SQL_RENAME_CUSTOMER: &str = concat!(
    "UPDATE chats SET customer_name = $2 WHERE customer_id = $1 AND status <> 'resolved'",
    " RETURNING ",
    chat_columns!()
);
pub(super) const SQL_QUEUE: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
);
// Entries by (chat, seq) keys, one primary-key lookup each.
pub(super) const SQL_ENTRIES: &str = concat!(
    "SELECT ",
    "m.id, m.chat_id, m.seq, m.sender_type, m.sender_id, m.content, m.created_at,",
    " m.client_message_id, m.event, m.attachment_id, m.attachment_name, m.attachment_type,",
    " m.attachment_size, m.attachment_sha256",
    " FROM unnest($1::text[], $2::bigint[]) AS k(chat_id, seq)",
    " JOIN messages m ON m.chat_id = k.chat_id AND m.seq = k.seq"
);
pub(super) const SQL_QUEUE_KEYS: &str =
    "SELECT created_at, id FROM chats WHERE status = 'pending' ORDER BY created_at, id LIMIT $1";
// As the SQLite store's: officers who may be given a chat automatically.
pub(super) const SQL_ELIGIBLE_OFFICERS: &str = "SELECT id, display_name, password_hash,
     created_at, disabled, capacity, open_chats::bigint, availability, true FROM officers
     WHERE NOT disabled AND availability = 'available'
     AND EXISTS (SELECT 1 FROM presence WHERE presence.officer_id = officers.id)
     AND open_chats < COALESCE(capacity::bigint, $1)
     ORDER BY open_chats, last_assigned_at NULLS FIRST, id LIMIT $2";
pub(super) const SQL_CUSTOMER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE customer_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
);
pub(super) const SQL_OFFICER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE assigned_officer_id = $1 AND status = $2",
    " ORDER BY updated_at DESC, id DESC LIMIT $3"
);
// A transition in one statement, inside the transaction that locked the officers it
// counts for: the chat changed only if still as decided on (`$1`-`$6`), its system entry
// at the new seq (`$7`-`$17`), and each officer's open chats moved by their delta
// (`$18` ids, `$19` deltas; `$20` the officer given the chat, whose last assignment is
// now). With the chat not as decided on, nothing is written and no row returns.
pub(super) const SQL_TRANSITION: &str = concat!(
    "WITH u AS (UPDATE chats SET status = $4, assigned_officer_id = $5, updated_at = $6,",
    " resolved_at = CASE WHEN $4 = 'resolved' THEN $6::BIGINT END, last_seq = last_seq + 1",
    " WHERE id = $1 AND status = $2 AND assigned_officer_id IS NOT DISTINCT FROM $3",
    " RETURNING ",
    chat_columns!(),
    "), m AS (INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content,",
    " created_at, client_message_id, event, attachment_id, attachment_name, attachment_type,",
    " attachment_size, attachment_sha256)",
    " SELECT u.id, u.last_seq, $7::TEXT, $8::TEXT, $9::TEXT, $10::TEXT, $6::BIGINT, $11::TEXT,",
    " $12::TEXT, $13::TEXT, $14::TEXT, $15::TEXT, $16::BIGINT, $17::TEXT FROM u),",
    " o AS (UPDATE officers SET open_chats = officers.open_chats + d.delta,",
    " last_assigned_at = CASE WHEN officers.id = $20::TEXT THEN $6::BIGINT",
    " ELSE officers.last_assigned_at END",
    " FROM unnest($18::TEXT[], $19::INT[]) AS d(id, delta)",
    " WHERE officers.id = d.id AND EXISTS (SELECT 1 FROM u))",
    " SELECT ",
    chat_columns!(),
    " FROM u"
);
// The officers a transition counts for, locked in id order (the one order in which
// every transaction locks officers, and always before the chat).
pub(super) const SQL_LOCK_OFFICERS: &str = "SELECT id, capacity, open_chats, \
     NOT disabled AND availability = 'available' \
     AND EXISTS (SELECT 1 FROM presence WHERE presence.officer_id = officers.id) \
     FROM officers WHERE id = ANY($1) ORDER BY id FOR UPDATE";
// A send in one statement and its own transaction: the next seq, taken only while the
// chat is still in the state the write was allowed on (`$3` NULL: any state) and while
// the sender has stored nothing under the key (`$7`; the unique index decides a race
// this read cannot see), and the message at it. Taking the seq locks the chat's row
// until commit: concurrent senders queue on it, so seqs are dense and committed in
// order. No row returns when nothing was written.
pub(super) const SQL_APPEND: &str = concat!(
    "WITH s AS (UPDATE chats SET last_seq = last_seq + 1, updated_at = $2",
    " WHERE id = $1 AND ($3::TEXT IS NULL OR (status = $3 AND",
    " assigned_officer_id IS NOT DISTINCT FROM $4::TEXT))",
    " AND ($7::TEXT IS NULL OR NOT EXISTS (SELECT 1 FROM messages WHERE chat_id = $1",
    " AND sender_type = $5 AND sender_id = $6 AND client_message_id = $7))",
    " RETURNING last_seq)",
    " , m AS (INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content,",
    " created_at, client_message_id, event, attachment_id, attachment_name, attachment_type,",
    " attachment_size, attachment_sha256)",
    " SELECT $1, s.last_seq, $8::TEXT, $5::TEXT, $6::TEXT, $9::TEXT, $2::BIGINT, $7::TEXT,",
    " $10::TEXT, $11::TEXT, $12::TEXT, $13::TEXT, $14::BIGINT, $15::TEXT FROM s",
    " RETURNING seq),",
    // Its webhook lanes (chatcore's store::webhooks), in the same statement: one per
    // webhook that takes `new_message`, made with its cursor just before this message
    // when it does not exist, and locked until commit. The message itself is the event:
    // no row, no body.
    " l AS (INSERT INTO webhook_lanes (webhook_id, chat_id, next_attempt_at, last_event_at,",
    " cursor_seq) SELECT w.id, $1, $2::BIGINT, $2::BIGINT, m.seq - 1 FROM m, webhooks w",
    " WHERE w.events LIKE '% new_message %' ORDER BY w.id ON CONFLICT (webhook_id, chat_id)",
    " DO UPDATE SET last_event_at = excluded.last_event_at)",
    " SELECT seq FROM m"
);
/// A webhook lane's messages: its chat's after its cursor, when its webhook takes
/// `new_message` (none else: the cursor is NULL); `$1` the webhook, `$2` the chat.
pub(super) const SQL_LANE_MESSAGES: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = $2 AND seq > (SELECT l.cursor_seq FROM webhook_lanes l",
    " JOIN webhooks w ON w.id = l.webhook_id WHERE l.webhook_id = $1 AND l.chat_id = $2",
    " AND w.events LIKE '% new_message %') ORDER BY seq LIMIT $3"
);
/// A chat's messages after a seq, in order (a failed one's, read again to record it).
pub(super) const SQL_MESSAGES_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
);
pub(super) const SQL_IDEMPOTENT_ORIGINAL: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = $1 AND sender_type = $2 AND sender_id = $3",
    " AND client_message_id = $4"
);
pub(super) const SQL_ATTACHMENT: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE attachment_id = $1"
);
pub(super) const SQL_BLOB_IN_USE: &str =
    "SELECT EXISTS (SELECT 1 FROM messages WHERE attachment_sha256 = $1)";
// A page's rows stop, in the database, at the first row whose preceding contents
// already hold the byte cap (`$4`, `$5`): a message's JSON is never shorter than its
// content, so no later row could fit, and a window of huge rows is never sent whole.
// `fill_page` then cuts at the exact JSON size.
pub(super) const SQL_PAGE_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM (SELECT ",
    message_columns!(),
    ", SUM(octet_length(content)) OVER (ORDER BY seq ASC ROWS UNBOUNDED PRECEDING)",
    " - octet_length(content) AS ahead",
    " FROM messages WHERE chat_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3) page",
    " WHERE ahead < $4 ORDER BY seq ASC"
);
pub(super) const SQL_PAGE_BEFORE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM (SELECT ",
    message_columns!(),
    ", SUM(octet_length(content)) OVER (ORDER BY seq DESC ROWS UNBOUNDED PRECEDING)",
    " - octet_length(content) AS ahead",
    " FROM messages WHERE chat_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4)",
    " page WHERE ahead < $5 ORDER BY seq DESC"
);
/// An officer's columns, with how many open chats they hold (the row's counter).
macro_rules! officer_columns {
    () => {
        "SELECT id, display_name, password_hash, created_at, disabled, capacity, \
         open_chats::bigint, availability, \
         EXISTS (SELECT 1 FROM presence WHERE presence.officer_id = officers.id) FROM officers"
    };
}
pub(super) use officer_columns;
pub(super) const SQL_OFFICER: &str = concat!(officer_columns!(), " WHERE id = $1");
pub(super) const SQL_SESSION: &str = "SELECT role, subject, chat_id, created_at, expires_at \
     FROM sessions WHERE token_hash = $1";

pub(super) fn chat_from_row(r: &Row) -> StoreResult<Chat> {
    let columns = ChatColumns {
        id: r.try_get(0).map_err(classify)?,
        customer_id: r.try_get(1).map_err(classify)?,
        assigned_officer_id: r.try_get(2).map_err(classify)?,
        status: r.try_get(3).map_err(classify)?,
        created_at: r.try_get(4).map_err(classify)?,
        customer_name: r.try_get(5).map_err(classify)?,
        updated_at: r.try_get(6).map_err(classify)?,
        resolved_at: r.try_get(7).map_err(classify)?,
        last_seq: r.try_get(8).map_err(classify)?,
        customer_last_read_seq: r.try_get(9).map_err(classify)?,
        officer_last_read_seq: r.try_get(10).map_err(classify)?,
    };
    Ok(columns.decode()?)
}

pub(super) fn message_from_row(r: &Row) -> StoreResult<Message> {
    let seq: i64 = r.try_get(2).map_err(classify)?;
    let columns = MessageColumns {
        id: r.try_get(0).map_err(classify)?,
        chat_id: r.try_get(1).map_err(classify)?,
        seq: u64::try_from(seq).map_err(|_| MalformedRow("messages.seq"))?,
        sender_type: r.try_get(3).map_err(classify)?,
        sender_id: r.try_get(4).map_err(classify)?,
        content: r.try_get(5).map_err(classify)?,
        created_at: r.try_get(6).map_err(classify)?,
        client_message_id: r.try_get(7).map_err(classify)?,
        event: r.try_get(8).map_err(classify)?,
        attachment: AttachmentColumns {
            id: r.try_get(9).map_err(classify)?,
            name: r.try_get(10).map_err(classify)?,
            content_type: r.try_get(11).map_err(classify)?,
            size: r.try_get(12).map_err(classify)?,
            sha256: r.try_get(13).map_err(classify)?,
        },
    };
    Ok(columns.decode()?)
}

pub(super) fn officer_from_row(r: &Row) -> StoreResult<OfficerRecord> {
    let columns = OfficerColumns {
        id: r.try_get(0).map_err(classify)?,
        display_name: r.try_get(1).map_err(classify)?,
        password_hash: r.try_get(2).map_err(classify)?,
        created_at: r.try_get(3).map_err(classify)?,
        disabled: r.try_get(4).map_err(classify)?,
        capacity: r
            .try_get::<_, Option<i32>>(5)
            .map_err(classify)?
            .map(i64::from),
        open_chats: r.try_get(6).map_err(classify)?,
        availability: r.try_get(7).map_err(classify)?,
        connected: r.try_get(8).map_err(classify)?,
    };
    Ok(columns.decode()?)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::store::{PgOptions, PgStore};
    use crate::testing::TestPg;

    /// Every hot statement finds its rows through an index and gets them in index
    /// order: no sequential scan, no sort (the same check as the SQLite store's). The
    /// generic plan is checked, which is what a prepared statement runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_queries_use_an_index_and_never_sort() {
        let Some(pg) = TestPg::start("hot_queries_use_an_index_and_never_sort") else {
            return;
        };
        let config = pg.database().await;
        let store = PgStore::connect_with(config, PgOptions::default())
            .await
            .unwrap();
        let client = store.client().await.unwrap();
        // Empty tables make a sequential scan the cheapest plan; forbid it so that the
        // planner shows which index it would use at scale.
        client
            .batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        for (i, (name, sql)) in [
            ("chat by id", SQL_CHAT_BY_ID),
            ("chat by customer", SQL_CHAT_BY_CUSTOMER),
            ("queue", SQL_QUEUE),
            ("queue keys", SQL_QUEUE_KEYS),
            ("officer chats", SQL_OFFICER_CHATS),
            ("transition", SQL_TRANSITION),
            ("idempotency lookup", SQL_IDEMPOTENT_ORIGINAL),
            ("append", SQL_APPEND),
            ("page after", SQL_PAGE_AFTER),
            ("lane messages", SQL_LANE_MESSAGES),
            ("page before", SQL_PAGE_BEFORE),
            ("officer", SQL_OFFICER),
            ("session", SQL_SESSION),
            ("attachment", SQL_ATTACHMENT),
            ("blob in use", SQL_BLOB_IN_USE),
        ]
        .into_iter()
        .enumerate()
        {
            // The highest `$n` named; with a generic plan the values do not matter.
            let params = (1..=40)
                .filter(|n| {
                    sql.match_indices(&format!("${n}")).any(|(at, m)| {
                        !sql[at + m.len()..].starts_with(|c: char| c.is_ascii_digit())
                    })
                })
                .max()
                .unwrap_or(0);
            let args = vec!["NULL"; params].join(", ");
            client
                .batch_execute(&format!("PREPARE q{i} AS {sql}"))
                .await
                .unwrap();
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN EXECUTE q{i}({args})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains("Index"), "{name}: no index in plan: {plan}");
            // The webhooks (at most 17 rows) are read whole by a send's outbox insert.
            let plan = plan.replace("Seq Scan on webhooks", "");
            assert!(!plan.contains("Seq Scan"), "{name}: scans: {plan}");
            assert!(!plan.contains("Sort"), "{name}: sorts: {plan}");
        }
    }
}
