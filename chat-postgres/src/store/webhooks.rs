//! The webhooks' outbox on PostgreSQL: [`write_outbox`], which the change operations run
//! inside their own transaction, and `impl WebhookStore for PgStore`.
//!
//! As on SQLite (chatcore's `store::sqlite::webhooks`), a message's event has no row:
//! each lane keeps a cursor (the last seq it delivered) and reads its chat's messages
//! after it. A chat's messages commit in seq order (each send locks the chat's row to
//! take its seq), so a reader never sees a seq before the one ahead of it. Rows are a
//! chat's changes, and messages whose delivery failed, placed in the chat's order by
//! `after_seq`.
//!
//! Several nodes share the tables. A claim takes due lanes with `FOR UPDATE SKIP
//! LOCKED` and writes a lease (an expiry and a token) in the same statement, so each
//! lane goes to one node; a node that dies leaves leases that expire, and the next
//! claim after the expiry takes the lane over. A lane row is locked by every
//! transaction that adds to it (`ON CONFLICT DO UPDATE`), and a batch's last settlement
//! locks it before it looks for deliveries left, in a statement of its own: so it cannot
//! delete a lane an uncommitted event is being added to.

use async_trait::async_trait;
use chatcore::store::{
    ClaimedLane, DeliveryQuery, LaneClaim, PendingDelivery, Settled, Settlement, StoreResult,
    WebhookRecord, WebhookStore, merge_lane,
};
use chatcore::webhooks::{OutboxEvent, Webhook, WebhookDelivery, WebhookSecret};
use chatcore::{StoreError, Timestamp};
use deadpool_postgres::GenericClient;

use super::PgStore;
use super::rows::{SQL_LANE_MESSAGES, SQL_MESSAGES_AFTER, message_from_row};
use crate::error::classify;

/// Writes a change's events inside the caller's transaction: a row per webhook whose
/// filter takes a chat's change, and the lane of each event (locked until commit; made,
/// when it does not exist, with its cursor just before a message, or at a change's
/// position). A message's event is only its lane: the message
/// is read when the lane is delivered. With no webhook, each event costs one statement
/// that writes nothing.
pub(super) async fn write_outbox(
    tx: &impl GenericClient,
    events: &[OutboxEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let change = tx
        .prepare_cached(
            "WITH d AS (
                 INSERT INTO webhook_deliveries
                     (webhook_id, chat_id, event_id, kind, body, created_at, queued_at,
                      after_seq)
                 SELECT id, $1, $2, $3, $4, $5, $5, $6 FROM webhooks
                 WHERE events LIKE '% ' || $3 || ' %' ORDER BY id
                 RETURNING webhook_id)
             INSERT INTO webhook_lanes
                 (webhook_id, chat_id, next_attempt_at, last_event_at, cursor_seq)
             SELECT DISTINCT webhook_id, $1, $5::BIGINT, $5::BIGINT, $6::BIGINT FROM d
             ORDER BY webhook_id
             ON CONFLICT (webhook_id, chat_id)
                 DO UPDATE SET last_event_at = excluded.last_event_at",
        )
        .await
        .map_err(classify)?;
    let message = tx
        .prepare_cached(
            "INSERT INTO webhook_lanes
                 (webhook_id, chat_id, next_attempt_at, last_event_at, cursor_seq)
             SELECT id, $1, $2::BIGINT, $2::BIGINT, $3::BIGINT - 1 FROM webhooks
             WHERE events LIKE '% new_message %' ORDER BY id
             ON CONFLICT (webhook_id, chat_id)
                 DO UPDATE SET last_event_at = excluded.last_event_at",
        )
        .await
        .map_err(classify)?;
    for e in events {
        let chat = e.chat_id.to_string();
        let at = e.created_at.unix_millis();
        let position = i64::try_from(e.position).unwrap_or(i64::MAX);
        if e.kind == "new_message" {
            tx.execute(&message, &[&chat, &at, &position])
                .await
                .map_err(classify)?;
        } else {
            tx.execute(
                &change,
                &[&chat, &e.event_id, &e.kind, &e.body, &at, &position],
            )
            .await
            .map_err(classify)?;
        }
    }
    Ok(())
}

fn delivery_from_row(r: &tokio_postgres::Row) -> StoreResult<WebhookDelivery> {
    let get = |e| classify(e);
    let attempts: i32 = r.try_get(6).map_err(get)?;
    let dead: bool = r.try_get(9).map_err(get)?;
    Ok(WebhookDelivery {
        id: r.try_get(0).map_err(get)?,
        webhook_id: r.try_get(1).map_err(get)?,
        event_id: r.try_get(2).map_err(get)?,
        kind: r.try_get(3).map_err(get)?,
        chat_id: r.try_get(4).map_err(get)?,
        created_at: Timestamp::from_unix_millis(r.try_get(5).map_err(get)?),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: r.try_get(7).map_err(get)?,
        last_attempt_at: r
            .try_get::<_, Option<i64>>(8)
            .map_err(get)?
            .map(Timestamp::from_unix_millis),
        state: if dead { "dead" } else { "pending" }.into(),
    })
}

/// A chat's messages after `cursor`, at most `limit`.
async fn messages_after(
    client: &impl GenericClient,
    chat_id: &str,
    cursor: i64,
    limit: i64,
) -> StoreResult<Vec<chatcore::Message>> {
    let st = client
        .prepare_cached(SQL_MESSAGES_AFTER)
        .await
        .map_err(classify)?;
    client
        .query(&st, &[&chat_id, &cursor, &limit])
        .await
        .map_err(classify)?
        .iter()
        .map(message_from_row)
        .collect()
}

/// A lane's first `batch` pending deliveries, in order: its rows and its chat's
/// messages after its cursor, merged by position (a message `s` comes after the rows
/// at `s - 1` and before those at `s`). Its statements must see one state: in one
/// snapshot (a claim's), or under the lane's lock (a settlement's, which no event for
/// the lane can commit past).
async fn pending_of(
    client: &impl GenericClient,
    webhook_id: &str,
    chat_id: &str,
    batch: u32,
) -> StoreResult<Vec<PendingDelivery>> {
    let batch = i64::from(batch.max(1));
    let st = client
        .prepare_cached(
            "SELECT id, event_id, kind, body, queued_at, attempts, after_seq
             FROM webhook_deliveries
             WHERE webhook_id = $1 AND chat_id = $2 AND NOT dead
             ORDER BY after_seq, id LIMIT $3",
        )
        .await
        .map_err(classify)?;
    let rows = client
        .query(&st, &[&webhook_id, &chat_id, &batch])
        .await
        .map_err(classify)?
        .iter()
        .map(|r| {
            let attempts: i32 = r.try_get(5).map_err(classify)?;
            let after: i64 = r.try_get(6).map_err(classify)?;
            Ok((
                u64::try_from(after).unwrap_or(0),
                PendingDelivery {
                    id: r.try_get(0).map_err(classify)?,
                    event_id: r.try_get(1).map_err(classify)?,
                    kind: r.try_get(2).map_err(classify)?,
                    body: r.try_get(3).map_err(classify)?,
                    queued_at: Timestamp::from_unix_millis(r.try_get(4).map_err(classify)?),
                    attempts: u32::try_from(attempts).unwrap_or(0),
                },
            ))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let st = client
        .prepare_cached(SQL_LANE_MESSAGES)
        .await
        .map_err(classify)?;
    let messages = client
        .query(&st, &[&webhook_id, &chat_id, &batch])
        .await
        .map_err(classify)?
        .iter()
        .map(message_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(merge_lane(rows, messages, batch as usize))
}

/// For a claim letting a lane go, inside its transaction: `None` when `token` does not
/// hold the lane, else whether deliveries are pending in it (rows, or messages after
/// its cursor). The lane's lock first: a transaction adding an event to this lane
/// (a change's row, or a message) holds it until it commits, and the look for
/// deliveries (a statement of its own, so a snapshot taken after the lock) then sees
/// that event.
async fn lock_and_look(
    tx: &impl GenericClient,
    webhook_id: &str,
    chat_id: &str,
    token: &str,
) -> StoreResult<Option<bool>> {
    let st = tx
        .prepare_cached(
            "SELECT 1 FROM webhook_lanes WHERE webhook_id = $1 AND chat_id = $2
             AND lease_token = $3 FOR UPDATE",
        )
        .await
        .map_err(classify)?;
    if tx
        .query_opt(&st, &[&webhook_id, &chat_id, &token])
        .await
        .map_err(classify)?
        .is_none()
    {
        return Ok(None);
    }
    let st = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries
                 WHERE webhook_id = $1 AND chat_id = $2 AND NOT dead)
             OR EXISTS (SELECT 1 FROM webhook_lanes l, webhooks w, messages m
                 WHERE l.webhook_id = $1 AND l.chat_id = $2 AND w.id = $1
                   AND w.events LIKE '% new_message %'
                   AND m.chat_id = $2 AND m.seq > l.cursor_seq)",
        )
        .await
        .map_err(classify)?;
    let left: bool = tx
        .query_one(&st, &[&webhook_id, &chat_id])
        .await
        .map_err(classify)?
        .try_get(0)
        .map_err(classify)?;
    Ok(Some(left))
}

/// Lets the transaction's commit return before its WAL reaches the disk
/// (`synchronous_commit = off` for it alone): for the deliveries' own bookkeeping, which a
/// crash may lose without harm. PostgreSQL writes the WAL in order, so a later commit
/// that waits for the disk makes this one durable too.
async fn lazy_commit(tx: &impl GenericClient) -> StoreResult<()> {
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await
        .map_err(classify)
}

/// Deletes a lane (inside the transaction that found it empty under its lock).
async fn delete_lane(tx: &impl GenericClient, webhook_id: &str, chat_id: &str) -> StoreResult<()> {
    let st = tx
        .prepare_cached("DELETE FROM webhook_lanes WHERE webhook_id = $1 AND chat_id = $2")
        .await
        .map_err(classify)?;
    tx.execute(&st, &[&webhook_id, &chat_id])
        .await
        .map_err(classify)?;
    Ok(())
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn put_webhook(&self, w: &WebhookRecord) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // One edit of a webhook at a time (its lanes' locks are then taken by one). Not
        // FOR UPDATE: that would also block the key-share locks of the foreign keys
        // that new lanes and rows take on the webhook, from sends and retries that may
        // hold a lane this edit waits for.
        let st = tx
            .prepare_cached("SELECT 1 FROM webhooks WHERE id = $1 FOR NO KEY UPDATE")
            .await
            .map_err(classify)?;
        tx.query_opt(&st, &[&w.id]).await.map_err(classify)?;
        // A webhook that starts taking messages takes those from now on: its lanes'
        // cursors move to their chats' last messages.
        if w.events.iter().any(|k| k == "new_message") {
            let st = tx
                .prepare_cached(
                    "UPDATE webhook_lanes l SET cursor_seq = GREATEST(l.cursor_seq, c.last_seq)
                     FROM chats c, webhooks w
                     WHERE l.webhook_id = $1 AND c.id = l.chat_id AND w.id = $1
                       AND w.events NOT LIKE '% new_message %'",
                )
                .await
                .map_err(classify)?;
            tx.execute(&st, &[&w.id]).await.map_err(classify)?;
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO webhooks (id, url, secret, events, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                     events = excluded.events",
            )
            .await
            .map_err(classify)?;
        tx.execute(
            &st,
            &[
                &w.id,
                &w.url,
                &w.secret.expose(),
                &w.events_column(),
                &w.created_at.unix_millis(),
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT w.id, w.url, w.events, w.created_at,
                    (SELECT count(*) FROM webhook_deliveries d
                     WHERE d.webhook_id = w.id AND NOT d.dead)
                    + CASE WHEN w.events LIKE '% new_message %' THEN
                        (SELECT coalesce(sum(c.last_seq - l.cursor_seq), 0)::BIGINT
                         FROM webhook_lanes l JOIN chats c ON c.id = l.chat_id
                         WHERE l.webhook_id = w.id) ELSE 0 END,
                    (SELECT count(*) FROM webhook_deliveries d
                     WHERE d.webhook_id = w.id AND d.dead)
                 FROM webhooks w ORDER BY w.id",
            )
            .await
            .map_err(classify)?;
        let rows = client.query(&st, &[]).await.map_err(classify)?;
        rows.iter()
            .map(|r| {
                let events: String = r.try_get(2).map_err(classify)?;
                let pending: i64 = r.try_get(4).map_err(classify)?;
                let dead: i64 = r.try_get(5).map_err(classify)?;
                Ok(Webhook {
                    id: r.try_get(0).map_err(classify)?,
                    url: r.try_get(1).map_err(classify)?,
                    events: WebhookRecord::events_from_column(&events),
                    created_at: Timestamp::from_unix_millis(r.try_get(3).map_err(classify)?),
                    pending: u64::try_from(pending).unwrap_or(0),
                    dead: u64::try_from(dead).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("DELETE FROM webhooks WHERE id = $1")
            .await
            .map_err(classify)?;
        Ok(client.execute(&st, &[&id]).await.map_err(classify)? > 0)
    }

    async fn webhook_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<WebhookDelivery>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT id, webhook_id, event_id, kind, chat_id, created_at, attempts,
                        last_error, last_attempt_at, dead
                 FROM webhook_deliveries
                 WHERE dead = $1 AND id > $2 AND ($3::TEXT IS NULL OR webhook_id = $3)
                 ORDER BY id LIMIT $4",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(
                &st,
                &[
                    &q.dead,
                    &q.after_id.unwrap_or(0),
                    &q.webhook_id,
                    &i64::from(q.limit),
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let st = tx
            .prepare_cached(
                "WITH r AS (
                     UPDATE webhook_deliveries SET dead = false, attempts = 0, queued_at = $3
                     WHERE dead AND ($1::TEXT IS NULL OR webhook_id = $1)
                       AND ($2::BIGINT IS NULL OR id = $2)
                     RETURNING webhook_id, chat_id),
                 l AS (
                     INSERT INTO webhook_lanes
                         (webhook_id, chat_id, next_attempt_at, cursor_seq)
                     SELECT DISTINCT r.webhook_id, r.chat_id, $3::BIGINT,
                         coalesce(c.last_seq, 0)
                     FROM r LEFT JOIN chats c ON c.id = r.chat_id
                     ORDER BY r.webhook_id, r.chat_id
                     ON CONFLICT (webhook_id, chat_id) DO UPDATE SET next_attempt_at =
                         LEAST(webhook_lanes.next_attempt_at, excluded.next_attempt_at))
                 SELECT count(*) FROM r",
            )
            .await
            .map_err(classify)?;
        let retried: i64 = tx
            .query_one(&st, &[&webhook_id, &delivery_id, &now.unix_millis()])
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(u64::try_from(retried).unwrap_or(0))
    }

    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        // The lease waits for the disk (unlike settlements): nodes outlive a crash of
        // the database, and a lease it lost would leave a claimed lane free for another
        // node while this one sends. One commit covers every lane of the claim.
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "UPDATE webhook_lanes l SET lease_until = $2, lease_token = $3
                 FROM (SELECT webhook_id, chat_id FROM webhook_lanes
                       WHERE next_attempt_at <= $1
                         AND (lease_until IS NULL OR lease_until <= $1)
                       ORDER BY next_attempt_at LIMIT $4
                       FOR UPDATE SKIP LOCKED) due, webhooks w
                 WHERE l.webhook_id = due.webhook_id AND l.chat_id = due.chat_id
                   AND w.id = l.webhook_id
                 RETURNING l.webhook_id, l.chat_id, w.url, w.secret",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(
                &st,
                &[
                    &claim.now.unix_millis(),
                    &claim.lease_until.unix_millis(),
                    &claim.token,
                    &i64::from(claim.lanes),
                ],
            )
            .await
            .map_err(classify)?;
        // The lanes' rows and messages are read in one snapshot: in statements of their
        // own, a change committed between them (its entry and its row) would be read as
        // the entry and the messages after it without the row that goes between them.
        let mut client = client;
        let snapshot = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(classify)?;
        let mut lanes = Vec::with_capacity(rows.len());
        for row in rows {
            let webhook_id: String = row.try_get(0).map_err(classify)?;
            let chat_id: String = row.try_get(1).map_err(classify)?;
            let secret: String = row.try_get(3).map_err(classify)?;
            let deliveries = pending_of(&snapshot, &webhook_id, &chat_id, claim.batch).await?;
            lanes.push(ClaimedLane {
                webhook_id,
                chat_id,
                url: row.try_get(2).map_err(classify)?,
                secret: WebhookSecret::new(secret)
                    .map_err(|_| StoreError::backend("a malformed webhook secret"))?,
                deliveries,
            });
        }
        snapshot.commit().await.map_err(classify)?;
        Ok(lanes)
    }

    async fn settle_deliveries(
        &self,
        webhook_id: &str,
        chat_id: &str,
        token: &str,
        settlement: &Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // A settlement does not wait for the disk: a crash of the database may lose it,
        // and its events are then sent again, as at least once allows (with its lease's
        // renewal lost too, another node may take the lane while this one finishes its
        // batch: duplicates, first arrivals still in order, and this node stops at its
        // next settlement, whose token no longer holds the lane).
        lazy_commit(&tx).await?;
        let (messages, rows): (Vec<i64>, Vec<i64>) =
            settlement.delivered.iter().partition(|id| **id < 0);
        let mut cursor = messages.iter().map(|id| -id).max();
        if !rows.is_empty() {
            let st = tx
                .prepare_cached("DELETE FROM webhook_deliveries WHERE id = ANY($1)")
                .await
                .map_err(classify)?;
            tx.execute(&st, &[&rows]).await.map_err(classify)?;
        }
        let failed_message = settlement.failed.as_ref().filter(|f| f.delivery < 0);
        if let Some(failed) = failed_message {
            // A message's failed delivery becomes a row (it has attempts now), just
            // before the message in the lane's order, and the cursor passes it; only
            // while the lane is this claim's (another claimant may have delivered it
            // since, and its cursor passed it), under the lane's lock.
            let seq = -failed.delivery;
            let st = tx
                .prepare_cached(
                    "SELECT cursor_seq FROM webhook_lanes
                     WHERE webhook_id = $1 AND chat_id = $2 AND lease_token = $3 FOR UPDATE",
                )
                .await
                .map_err(classify)?;
            let cursor_now: Option<i64> = tx
                .query_opt(&st, &[&webhook_id, &chat_id, &token])
                .await
                .map_err(classify)?
                .map(|r| r.try_get(0).map_err(classify))
                .transpose()?;
            let message = match cursor_now {
                Some(at) if at < seq => messages_after(&tx, chat_id, seq - 1, 1).await?.pop(),
                _ => None,
            };
            if let Some(m) = message {
                let d = PendingDelivery::of_message(&m);
                let st = tx
                    .prepare_cached(
                        "INSERT INTO webhook_deliveries
                             (webhook_id, chat_id, event_id, kind, body, created_at,
                              queued_at, after_seq, attempts, last_error, last_attempt_at, dead)
                         VALUES ($1, $2, $3, 'new_message', $4, $5, $5, $6::BIGINT - 1, 1, $7, $8,
                             $9)",
                    )
                    .await
                    .map_err(classify)?;
                tx.execute(
                    &st,
                    &[
                        &webhook_id,
                        &chat_id,
                        &d.event_id,
                        &d.body,
                        &m.created_at.unix_millis(),
                        &seq,
                        &failed.error,
                        &now.unix_millis(),
                        &failed.retry_at.is_none(),
                    ],
                )
                .await
                .map_err(classify)?;
                cursor = cursor.max(Some(seq));
            }
        }
        if let Some(cursor) = cursor {
            let st = tx
                .prepare_cached(
                    "UPDATE webhook_lanes SET cursor_seq = GREATEST(cursor_seq, $3::BIGINT)
                     WHERE webhook_id = $1 AND chat_id = $2",
                )
                .await
                .map_err(classify)?;
            tx.execute(&st, &[&webhook_id, &chat_id, &cursor])
                .await
                .map_err(classify)?;
        }
        if let Some(failed) = settlement.failed.as_ref().filter(|f| f.delivery > 0) {
            let st = tx
                .prepare_cached(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2,
                         last_attempt_at = $3, dead = $4 WHERE id = $1",
                )
                .await
                .map_err(classify)?;
            tx.execute(
                &st,
                &[
                    &failed.delivery,
                    &failed.error,
                    &now.unix_millis(),
                    &failed.retry_at.is_none(),
                ],
            )
            .await
            .map_err(classify)?;
        }
        let (lease, next) = settlement.lane_after();
        if let (Some(next), Some(_)) = (settlement.then_next, lease) {
            // The batch's end: gone when nothing is pending in it, else the next batch
            // for the claim, or free for the next claim.
            let settled = match lock_and_look(&tx, webhook_id, chat_id, token).await? {
                None => Settled::Lost,
                Some(false) => {
                    delete_lane(&tx, webhook_id, chat_id).await?;
                    Settled::Emptied
                }
                Some(true) if next == 0 => {
                    let st = tx
                        .prepare_cached(
                            "UPDATE webhook_lanes SET lease_until = NULL, lease_token = NULL,
                                 next_attempt_at = $3 WHERE webhook_id = $1 AND chat_id = $2",
                        )
                        .await
                        .map_err(classify)?;
                    tx.execute(&st, &[&webhook_id, &chat_id, &now.unix_millis()])
                        .await
                        .map_err(classify)?;
                    Settled::Released
                }
                Some(true) => {
                    let st = tx
                        .prepare_cached(
                            "UPDATE webhook_lanes SET lease_until = $3
                             WHERE webhook_id = $1 AND chat_id = $2",
                        )
                        .await
                        .map_err(classify)?;
                    tx.execute(
                        &st,
                        &[&webhook_id, &chat_id, &settlement.lease_until.unix_millis()],
                    )
                    .await
                    .map_err(classify)?;
                    Settled::More(pending_of(&tx, webhook_id, chat_id, next).await?)
                }
            };
            tx.commit().await.map_err(classify)?;
            return Ok(settled);
        }
        let st = tx
            .prepare_cached(
                "UPDATE webhook_lanes SET
                     lease_until = $4::BIGINT,
                     lease_token = CASE WHEN $4::BIGINT IS NULL THEN NULL ELSE lease_token END,
                     next_attempt_at = coalesce($5::BIGINT, next_attempt_at)
                 WHERE webhook_id = $1 AND chat_id = $2 AND lease_token = $3",
            )
            .await
            .map_err(classify)?;
        let held = tx
            .execute(
                &st,
                &[
                    &webhook_id,
                    &chat_id,
                    &token,
                    &lease.map(Timestamp::unix_millis),
                    &next.map(Timestamp::unix_millis),
                ],
            )
            .await
            .map_err(classify)?
            == 1;
        tx.commit().await.map_err(classify)?;
        Ok(if held { Settled::Held } else { Settled::Lost })
    }

    async fn release_webhook_leases(&self) -> StoreResult<u64> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "UPDATE webhook_lanes SET lease_until = NULL, lease_token = NULL
                 WHERE lease_token IS NOT NULL",
            )
            .await
            .map_err(classify)?;
        client.execute(&st, &[]).await.map_err(classify)
    }
}
