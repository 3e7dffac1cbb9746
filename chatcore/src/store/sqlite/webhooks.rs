//! The webhooks' outbox on SQLite: [`write_outbox`], which the change operations call
//! inside their own savepoint of the writer's group transaction, and the
//! [`WebhookStore`] impl (webhooks, listings, claims, settlements).
//!
//! A message's event has no row: the messages table is the log, and each lane (webhook,
//! chat) keeps a cursor, the last seq it delivered; its pending messages are those
//! after it, read and made into bodies when the lane is claimed. A send then writes
//! only the lane (a no-op when it exists), not a row with a body that a delivery
//! deletes again. Rows are a chat's changes, and messages whose delivery failed (they
//! have attempts, an error and maybe a death to record), each placed in its chat's
//! order by `after_seq`: after that message, before the next. The one writer
//! serializes every claim and release, so a lane's lease needs no lock of its own here.
//! Leases and settlements are written lazily (a commit of nothing else is not fsynced:
//! a crash may lose them, and the events are then sent again).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::error::classify;
use crate::model::Timestamp;
use crate::store::{
    ClaimedLane, DeliveryQuery, LaneClaim, PendingDelivery, Settled, Settlement, StoreError,
    StoreResult, WebhookRecord, WebhookStore, merge_lane,
};
use crate::webhooks::{OutboxEvent, Webhook, WebhookDelivery, WebhookSecret};

/// Writes a change's events (built by `events`, only when some webhook exists: with none
/// the cost is one lookup in an empty table) in the caller's transaction, at once: in
/// the writer's batch, inside the change's own savepoint. A later job of the same batch
/// that reads the outbox (a settlement's next events) must see a change's row with the
/// messages after it, or it would send those first. A message writes only its lane,
/// which exists while its chat's events wait, so a savepoint rarely has a page of the
/// outbox to copy.
pub(super) fn write_outbox(
    c: &Connection,
    events: impl FnOnce() -> Vec<OutboxEvent>,
) -> StoreResult<()> {
    let any: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM webhooks)")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(classify)?;
    if !any {
        return Ok(());
    }
    insert_outbox(c, &events())
}

/// Inserts each `chat_updated`'s deliveries (one per webhook whose filter takes it), in
/// order, and makes sure each lane they went to exists. A `new_message` writes no row: the
/// messages table is its log, and its lane's cursor says how far it was delivered; it only
/// makes sure the lane exists, its cursor just before the message.
fn insert_outbox(c: &Connection, events: &[OutboxEvent]) -> StoreResult<()> {
    let mut lanes: Vec<(String, &'static str, i64, i64)> = Vec::new();
    for e in events {
        let chat = e.chat_id.to_string();
        let at = e.created_at.unix_millis();
        let position = e.position as i64;
        let cursor = if e.kind == "new_message" {
            position - 1
        } else {
            c.prepare_cached(
                "INSERT INTO webhook_deliveries
                     (webhook_id, chat_id, event_id, kind, body, created_at, queued_at, after_seq)
                 SELECT id, ?1, ?2, ?3, ?4, ?5, ?5, ?6 FROM webhooks
                 WHERE events LIKE '% ' || ?3 || ' %' ORDER BY id",
            )
            .and_then(|mut st| st.execute(params![chat, e.event_id, e.kind, e.body, at, position]))
            .map_err(classify)?;
            position
        };
        if !lanes.iter().any(|(c, k, _, _)| *c == chat && *k == e.kind) {
            lanes.push((chat, e.kind, at, cursor));
        }
    }
    for (chat, kind, at, cursor) in lanes {
        c.prepare_cached(
            "INSERT INTO webhook_lanes (webhook_id, chat_id, next_attempt_at, cursor_seq)
             SELECT id, ?1, ?2, ?4 FROM webhooks WHERE events LIKE '% ' || ?3 || ' %'
             ON CONFLICT (webhook_id, chat_id) DO NOTHING",
        )
        .and_then(|mut st| st.execute(params![chat, at, kind, cursor]))
        .map_err(classify)?;
    }
    Ok(())
}

fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.get(0)?,
        webhook_id: r.get(1)?,
        event_id: r.get(2)?,
        kind: r.get(3)?,
        chat_id: r.get(4)?,
        created_at: Timestamp::from_unix_millis(r.get(5)?),
        attempts: r.get(6)?,
        last_error: r.get(7)?,
        last_attempt_at: r.get::<_, Option<i64>>(8)?.map(Timestamp::from_unix_millis),
        state: if r.get::<_, bool>(9)? {
            "dead"
        } else {
            "pending"
        }
        .into(),
    })
}

/// Runs `f`'s reads in one read transaction (one snapshot), unless the connection is in
/// one already (the writer's batch). Between two statements of their own, the writer
/// could commit a change (its entry and its row): a lane would then read the entry and
/// the messages after it, but not the row that goes between them.
fn in_one_snapshot<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    if !c.is_autocommit() {
        return f(c);
    }
    c.execute_batch("BEGIN").map_err(classify)?;
    let out = f(c);
    let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = c.execute_batch(end) {
        // Never hand the reader back inside a transaction: its next snapshot would be
        // this one.
        let _ = c.execute_batch("ROLLBACK");
        return Err(classify(e));
    }
    out
}

/// A lane's first `batch` pending deliveries, in order: its `chat_updated` rows and
/// its chat's messages after its cursor, merged by position. Its reads must share one
/// snapshot ([`in_one_snapshot`]).
fn pending_of(
    c: &Connection,
    webhook: &str,
    chat: &str,
    batch: i64,
) -> StoreResult<Vec<PendingDelivery>> {
    let rows: Vec<(u64, PendingDelivery)> = c
        .prepare_cached(
            "SELECT id, event_id, kind, body, queued_at, attempts, after_seq
             FROM webhook_deliveries
             WHERE webhook_id = ?1 AND chat_id = ?2 AND dead = 0
             ORDER BY after_seq, id LIMIT ?3",
        )
        .and_then(|mut st| {
            st.query_map(params![webhook, chat, batch], |r| {
                Ok((
                    r.get::<_, i64>(6)? as u64,
                    PendingDelivery {
                        id: r.get(0)?,
                        event_id: r.get(1)?,
                        kind: r.get(2)?,
                        body: r.get(3)?,
                        queued_at: Timestamp::from_unix_millis(r.get(4)?),
                        attempts: r.get(5)?,
                    },
                ))
            })?
            .collect()
        })
        .map_err(classify)?;
    let messages: Vec<crate::model::Message> = c
        .prepare_cached(super::rows::SQL_LANE_MESSAGES)
        .and_then(|mut st| {
            st.query_map(params![webhook, chat, batch], super::rows::message_from_row)?
                .collect()
        })
        .map_err(classify)?;
    Ok(merge_lane(rows, messages, batch as usize))
}

/// Whether `token` holds the lane (its lease, whether expired or not: a lease that
/// expired but was not taken over is still good).
fn holds(c: &Connection, webhook: &str, chat: &str, token: &str) -> StoreResult<bool> {
    c.prepare_cached(
        "SELECT 1 FROM webhook_lanes WHERE webhook_id = ?1 AND chat_id = ?2 AND lease_token = ?3",
    )
    .and_then(|mut st| {
        st.query_row(params![webhook, chat, token], |_| Ok(()))
            .optional()
    })
    .map(|found| found.is_some())
    .map_err(classify)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        let w = webhook.clone();
        self.write(move |c| {
            // A webhook that starts taking messages takes those from now on: its lanes'
            // cursors move to their chats' last messages.
            let took_messages: Option<bool> = c
                .prepare_cached("SELECT events LIKE '% new_message %' FROM webhooks WHERE id = ?1")
                .and_then(|mut st| st.query_row([&w.id], |r| r.get(0)).optional())
                .map_err(classify)?;
            if took_messages == Some(false) && w.events.iter().any(|k| k == "new_message") {
                c.prepare_cached(
                    "UPDATE webhook_lanes SET cursor_seq = coalesce(
                         (SELECT last_seq FROM chats WHERE chats.id = chat_id), cursor_seq)
                     WHERE webhook_id = ?1",
                )
                .and_then(|mut st| st.execute([&w.id]))
                .map_err(classify)?;
            }
            c.prepare_cached(
                "INSERT INTO webhooks (id, url, secret, events, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                     events = excluded.events",
            )
            .and_then(|mut st| {
                st.execute(params![
                    w.id,
                    w.url,
                    w.secret.expose(),
                    w.events_column(),
                    w.created_at.unix_millis()
                ])
            })
            .map(|_| ())
            .map_err(classify)
        })
        .await
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT w.id, w.url, w.events, w.created_at,
                        (SELECT count(*) FROM webhook_deliveries d
                         WHERE d.webhook_id = w.id AND d.dead = 0)
                        + CASE WHEN w.events LIKE '% new_message %' THEN
                            (SELECT coalesce(sum(c.last_seq - l.cursor_seq), 0)
                             FROM webhook_lanes l JOIN chats c ON c.id = l.chat_id
                             WHERE l.webhook_id = w.id) ELSE 0 END,
                        (SELECT count(*) FROM webhook_deliveries d
                         WHERE d.webhook_id = w.id AND d.dead = 1)
                     FROM webhooks w ORDER BY w.id",
                )
                .map_err(classify)?;
            let rows = st
                .query_map([], |r| {
                    Ok(Webhook {
                        id: r.get(0)?,
                        url: r.get(1)?,
                        events: WebhookRecord::events_from_column(&r.get::<_, String>(2)?),
                        created_at: Timestamp::from_unix_millis(r.get(3)?),
                        pending: r.get::<_, i64>(4)? as u64,
                        dead: r.get::<_, i64>(5)? as u64,
                    })
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |c| {
            // The deliveries and lanes go with it (ON DELETE CASCADE).
            c.prepare_cached("DELETE FROM webhooks WHERE id = ?1")
                .and_then(|mut st| st.execute([id]))
                .map(|n| n > 0)
                .map_err(classify)
        })
        .await
    }

    async fn webhook_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<WebhookDelivery>> {
        let q = q.clone();
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT id, webhook_id, event_id, kind, chat_id, created_at, attempts,
                            last_error, last_attempt_at, dead
                     FROM webhook_deliveries
                     WHERE dead = ?1 AND id > ?2 AND (?3 IS NULL OR webhook_id = ?3)
                     ORDER BY id LIMIT ?4",
                )
                .map_err(classify)?;
            let rows = st
                .query_map(
                    params![
                        q.dead,
                        q.after_id.unwrap_or(0),
                        q.webhook_id,
                        i64::from(q.limit)
                    ],
                    delivery_from_row,
                )
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let webhook_id = webhook_id.map(str::to_string);
        self.write(move |c| {
            let retried = c
                .prepare_cached(
                    "UPDATE webhook_deliveries SET dead = 0, attempts = 0, queued_at = ?3
                     WHERE dead = 1 AND (?1 IS NULL OR webhook_id = ?1)
                       AND (?2 IS NULL OR id = ?2)",
                )
                .and_then(|mut st| st.execute(params![webhook_id, delivery_id, now.unix_millis()]))
                .map_err(classify)?;
            // Their lanes, due now (a lane waiting out a backoff is woken too). A lane
            // made again starts after its chat's messages so far: they were delivered or
            // given up on (rows), or another lane of this webhook has them.
            c.prepare_cached(
                "INSERT INTO webhook_lanes (webhook_id, chat_id, next_attempt_at, cursor_seq)
                 SELECT DISTINCT webhook_id, chat_id, ?3,
                     coalesce((SELECT last_seq FROM chats WHERE chats.id = chat_id), 0)
                 FROM webhook_deliveries
                 WHERE dead = 0 AND queued_at = ?3 AND attempts = 0
                   AND (?1 IS NULL OR webhook_id = ?1) AND (?2 IS NULL OR id = ?2)
                 ON CONFLICT (webhook_id, chat_id) DO UPDATE
                     SET next_attempt_at = min(next_attempt_at, excluded.next_attempt_at)",
            )
            .and_then(|mut st| st.execute(params![webhook_id, delivery_id, now.unix_millis()]))
            .map_err(classify)?;
            Ok(retried as u64)
        })
        .await
    }

    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        let now = claim.now.unix_millis();
        // A read first, on a reader: most polls find nothing due, and then the writer
        // (which chat traffic waits on) is not asked at all.
        let due: bool = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM webhook_lanes WHERE next_attempt_at <= ?1
                     AND (lease_until IS NULL OR lease_until <= ?1))",
                )
                .and_then(|mut st| st.query_row([now], |r| r.get(0)))
                .map_err(classify)
            })
            .await?;
        if !due {
            return Ok(Vec::new());
        }
        let claim = claim.clone();
        let batch = i64::from(claim.batch.max(1));
        // The lease is the write; the lanes' events are read after its commit on a
        // reader, off the writer that chat traffic waits on (the lease keeps them ours).
        // A crash may lose it (not fsynced on its own): its lanes are then free again.
        let leased: Vec<(String, String, String, String)> = self
            .write_lazily(move |c| {
                let keys: Vec<(String, String)> = c
                    .prepare_cached(
                        "UPDATE webhook_lanes SET lease_until = ?2, lease_token = ?3
                         WHERE (webhook_id, chat_id) IN (
                             SELECT webhook_id, chat_id FROM webhook_lanes
                             WHERE next_attempt_at <= ?1
                               AND (lease_until IS NULL OR lease_until <= ?1)
                             ORDER BY next_attempt_at LIMIT ?4)
                         RETURNING webhook_id, chat_id",
                    )
                    .and_then(|mut st| {
                        st.query_map(
                            params![
                                now,
                                claim.lease_until.unix_millis(),
                                claim.token,
                                i64::from(claim.lanes)
                            ],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?
                        .collect()
                    })
                    .map_err(classify)?;
                let mut leased = Vec::with_capacity(keys.len());
                for (webhook_id, chat_id) in keys {
                    let (url, secret): (String, String) = c
                        .prepare_cached("SELECT url, secret FROM webhooks WHERE id = ?1")
                        .and_then(|mut st| {
                            st.query_row([&webhook_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        })
                        .map_err(classify)?;
                    leased.push((webhook_id, chat_id, url, secret));
                }
                Ok(leased)
            })
            .await?;
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| {
            let mut lanes = Vec::with_capacity(leased.len());
            for (webhook_id, chat_id, url, secret) in leased {
                let deliveries =
                    in_one_snapshot(c, |c| pending_of(c, &webhook_id, &chat_id, batch))?;
                let secret = WebhookSecret::new(secret)
                    .map_err(|_| StoreError::backend("a malformed webhook secret"))?;
                lanes.push(ClaimedLane {
                    webhook_id,
                    chat_id,
                    url,
                    secret,
                    deliveries,
                });
            }
            Ok(lanes)
        })
        .await
    }

    async fn settle_deliveries(
        &self,
        webhook_id: &str,
        chat_id: &str,
        token: &str,
        settlement: &Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        let (webhook, chat, token) = (
            webhook_id.to_string(),
            chat_id.to_string(),
            token.to_string(),
        );
        let settlement = settlement.clone();
        // A crash may lose it (not fsynced on its own): its events are then sent again,
        // as at least once allows.
        self.write_lazily(move |c| {
            let mut delete = c
                .prepare_cached("DELETE FROM webhook_deliveries WHERE id = ?1")
                .map_err(classify)?;
            let mut cursor = None;
            for id in &settlement.delivered {
                if *id < 0 {
                    cursor = cursor.max(Some(-id));
                } else {
                    delete.execute([id]).map_err(classify)?;
                }
            }
            let failed_message = settlement.failed.as_ref().filter(|f| f.delivery < 0);
            if let Some(failed) = failed_message {
                // A message's failed delivery becomes a row (it has attempts now), just
                // before the message in the lane's order, and the cursor passes it; only
                // while the lane is this claim's (another claimant may have delivered it
                // since, and its cursor passed it).
                let seq = -failed.delivery;
                let message = c
                    .prepare_cached(super::rows::SQL_PAGE_AFTER)
                    .and_then(|mut st| {
                        st.query_row(params![chat, seq - 1, 1], super::rows::message_from_row)
                    })
                    .map_err(classify)?;
                let d = PendingDelivery::of_message(&message);
                let recorded = c
                    .prepare_cached(
                        "INSERT INTO webhook_deliveries
                         (webhook_id, chat_id, event_id, kind, body, created_at, queued_at,
                          after_seq, attempts, last_error, last_attempt_at, dead)
                     SELECT ?1, ?2, ?3, 'new_message', ?4, ?5, ?5, ?6, 1, ?7, ?8, ?9
                     WHERE EXISTS (SELECT 1 FROM webhook_lanes
                         WHERE webhook_id = ?1 AND chat_id = ?2 AND lease_token = ?10
                           AND cursor_seq < ?6 + 1)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            webhook,
                            chat,
                            d.event_id,
                            d.body,
                            message.created_at.unix_millis(),
                            seq - 1,
                            failed.error,
                            now.unix_millis(),
                            failed.retry_at.is_none(),
                            token
                        ])
                    })
                    .map_err(classify)?;
                if recorded == 1 {
                    cursor = cursor.max(Some(seq));
                }
            }
            if let Some(cursor) = cursor {
                c.prepare_cached(
                    "UPDATE webhook_lanes SET cursor_seq = max(cursor_seq, ?3)
                     WHERE webhook_id = ?1 AND chat_id = ?2",
                )
                .and_then(|mut st| st.execute(params![webhook, chat, cursor]))
                .map_err(classify)?;
            }
            if let Some(failed) = settlement.failed.as_ref().filter(|f| f.delivery > 0) {
                c.prepare_cached(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?2,
                         last_attempt_at = ?3, dead = ?4 WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        failed.delivery,
                        failed.error,
                        now.unix_millis(),
                        failed.retry_at.is_none()
                    ])
                })
                .map_err(classify)?;
            }
            let (lease, next) = settlement.lane_after();
            if let (Some(next), Some(_)) = (settlement.then_next, lease) {
                // The batch's end: gone when nothing is pending in it, else the next
                // batch for the claim, or free for the next claim.
                if !holds(c, &webhook, &chat, &token)? {
                    return Ok(Settled::Lost);
                }
                let emptied = c
                    .prepare_cached(
                        "DELETE FROM webhook_lanes WHERE webhook_id = ?1 AND chat_id = ?2
                         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries
                             WHERE webhook_id = ?1 AND chat_id = ?2 AND dead = 0)
                         AND NOT EXISTS (SELECT 1 FROM messages m, webhooks w
                             WHERE m.chat_id = ?2 AND m.seq > webhook_lanes.cursor_seq
                               AND w.id = ?1 AND w.events LIKE '% new_message %')",
                    )
                    .and_then(|mut st| st.execute(params![webhook, chat]))
                    .map_err(classify)?;
                if emptied == 1 {
                    return Ok(Settled::Emptied);
                }
                if next == 0 {
                    c.prepare_cached(
                        "UPDATE webhook_lanes SET lease_until = NULL, lease_token = NULL,
                             next_attempt_at = ?3 WHERE webhook_id = ?1 AND chat_id = ?2",
                    )
                    .and_then(|mut st| st.execute(params![webhook, chat, now.unix_millis()]))
                    .map_err(classify)?;
                    return Ok(Settled::Released);
                }
                // Read here, on the writer, rather than on a reader: the rows were
                // written moments ago and are in the writer's cache.
                let more = pending_of(c, &webhook, &chat, i64::from(next))?;
                c.prepare_cached(
                    "UPDATE webhook_lanes SET lease_until = ?3
                     WHERE webhook_id = ?1 AND chat_id = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![webhook, chat, settlement.lease_until.unix_millis()])
                })
                .map_err(classify)?;
                return Ok(Settled::More(more));
            }
            let held = c
                .prepare_cached(
                    "UPDATE webhook_lanes SET
                         lease_until = ?4,
                         lease_token = CASE WHEN ?4 IS NULL THEN NULL ELSE lease_token END,
                         next_attempt_at = coalesce(?5, next_attempt_at)
                     WHERE webhook_id = ?1 AND chat_id = ?2 AND lease_token = ?3",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        webhook,
                        chat,
                        token,
                        lease.map(Timestamp::unix_millis),
                        next.map(Timestamp::unix_millis)
                    ])
                })
                .map_err(classify)?;
            Ok(if held == 1 {
                Settled::Held
            } else {
                Settled::Lost
            })
        })
        .await
    }

    async fn release_webhook_leases(&self) -> StoreResult<u64> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE webhook_lanes SET lease_until = NULL, lease_token = NULL
                 WHERE lease_token IS NOT NULL",
            )
            .and_then(|mut st| st.execute([]))
            .map(|n| n as u64)
            .map_err(classify)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChatId, CustomerId, MessageId};
    use crate::model::SenderType;
    use crate::store::{LaneClaim, NewChat, NewMessage, PageQuery, Store};

    fn send(chat: ChatId, text: &str) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            chat_id: chat,
            sender_type: SenderType::Customer,
            sender_id: "cust".into(),
            content: text.into(),
            client_message_id: None,
            created_at: Timestamp::from_unix_millis(2_000),
            event: None,
            decided_on: None,
            attachment: None,
        }
    }

    /// What a lane reads on a reader shares one snapshot: a commit between its
    /// statements is not seen by the later ones.
    #[test]
    fn a_lanes_reads_share_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER);")
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        let (first, second) = in_one_snapshot(&reader, |c| {
            let first = count(c);
            writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
            Ok((first, count(c)))
        })
        .unwrap();
        assert_eq!((first, second), (0, 0));
        assert_eq!(count(&reader), 1, "the next read sees the commit");
        assert!(reader.is_autocommit(), "the read transaction ended");
    }

    /// A file as the build before the cursors left it (schema v12): a row per event
    /// with its body, here a chat's `created` change and its messages 2 and 3 (1 was
    /// delivered). Upgraded, its lane delivers those rows in order, never a message
    /// twice, then the messages sent after the upgrade.
    #[tokio::test]
    async fn a_v12_outbox_upgrades_to_cursors_without_losing_or_repeating_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v12.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .put_webhook(&WebhookRecord {
                id: "w".into(),
                url: "http://receiver.test/".into(),
                secret: WebhookSecret::new("secret-0123456789abcdef").unwrap(),
                events: vec!["chat_updated".into(), "new_message".into()],
                created_at: Timestamp::from_unix_millis(0),
            })
            .await
            .unwrap();
        let (chat, _) = store
            .get_or_create_chat(&NewChat {
                id: ChatId::new(),
                customer_id: CustomerId::parse("cust").unwrap(),
                customer_name: None,
                assigned_officer_id: None,
                default_capacity: None,
                created_at: Timestamp::from_unix_millis(1_000),
            })
            .await
            .unwrap();
        for text in ["m1", "m2", "m3"] {
            store.append_message(&send(chat.id, text)).await.unwrap();
        }
        let sent = store
            .messages(
                &chat.id,
                &PageQuery {
                    after: None,
                    before: None,
                    limit: 10,
                    max_bytes: usize::MAX,
                },
            )
            .await
            .unwrap();
        drop(store);
        // Back to v12: its rows for messages 2 and 3, with the event ids it made.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP INDEX webhook_deliveries_lane;
             ALTER TABLE webhook_deliveries DROP COLUMN after_seq;
             ALTER TABLE webhook_lanes DROP COLUMN cursor_seq;
             CREATE INDEX webhook_deliveries_lane ON webhook_deliveries(webhook_id, chat_id, id)
                 WHERE dead = 0;
             PRAGMA user_version = 12;",
        )
        .unwrap();
        for m in &sent[1..] {
            let mut event = OutboxEvent::new_message(m);
            let old_id = format!("old-{}", m.seq);
            event.body = event.body.replacen(&event.event_id, &old_id, 1);
            c.execute(
                "INSERT INTO webhook_deliveries
                     (webhook_id, chat_id, event_id, kind, body, created_at, queued_at)
                 VALUES ('w', ?1, ?2, 'new_message', ?3, 2000, 2000)",
                params![chat.id.to_string(), old_id, event.body],
            )
            .unwrap();
        }
        drop(c);
        let store = SqliteStore::open(&path).unwrap();
        store.append_message(&send(chat.id, "m4")).await.unwrap();
        assert_eq!(store.webhooks().await.unwrap()[0].pending, 4);
        let lanes = store
            .claim_webhook_lanes(&LaneClaim {
                now: Timestamp::from_unix_millis(10_000),
                lease_until: Timestamp::from_unix_millis(70_000),
                token: "t".into(),
                lanes: 10,
                batch: 16,
            })
            .await
            .unwrap();
        assert_eq!(lanes.len(), 1);
        let got: Vec<(&str, &str)> = lanes[0]
            .deliveries
            .iter()
            .map(|d| (d.kind.as_str(), d.event_id.as_str()))
            .collect();
        let m4 = store
            .messages(
                &chat.id,
                &PageQuery {
                    after: Some(3),
                    before: None,
                    limit: 1,
                    max_bytes: usize::MAX,
                },
            )
            .await
            .unwrap()
            .pop()
            .unwrap()
            .id
            .to_string();
        assert_eq!(got[0].0, "chat_updated");
        assert_eq!(
            &got[1..],
            [
                ("new_message", "old-2"),
                ("new_message", "old-3"),
                ("new_message", m4.as_str())
            ]
        );
    }
}
