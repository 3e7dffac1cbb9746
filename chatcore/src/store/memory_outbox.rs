//! The webhooks' outbox of [`MemoryStore`]: the same tables as the SQL stores (webhooks,
//! deliveries, lanes) as maps inside the store's one lock, so that a change and its
//! events are written under the same lock. As in SQLite, a message's event has no row:
//! each lane keeps a cursor in its chat's messages, and a row is a chat's change or a
//! message whose delivery failed, placed in the chat's order by `after_seq`. Nothing
//! survives the process.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::memory::MemoryStore;
use super::{
    ClaimedLane, DeliveryQuery, LaneClaim, PendingDelivery, Settled, Settlement, StoreResult,
    WebhookRecord, WebhookStore, merge_lane,
};
use crate::ids::ChatId;
use crate::model::{Message, Timestamp};
use crate::webhooks::{OutboxEvent, Webhook, WebhookDelivery};

/// The chats' messages, as the store keeps them (each chat's in seq order from 1).
type Messages = HashMap<ChatId, Vec<Message>>;

/// The outbox's state, a field of the memory store's state.
#[derive(Default)]
pub(super) struct Outbox {
    webhooks: BTreeMap<String, WebhookRecord>,
    last_id: i64,
    deliveries: BTreeMap<i64, Row>,
    lanes: BTreeMap<(String, String), Lane>,
}

struct Row {
    webhook_id: String,
    chat_id: String,
    event_id: String,
    kind: String,
    body: String,
    created_at: Timestamp,
    queued_at: Timestamp,
    attempts: u32,
    last_error: Option<String>,
    last_attempt_at: Option<Timestamp>,
    dead: bool,
    after_seq: u64,
}

struct Lane {
    next_attempt_at: Timestamp,
    lease: Option<(Timestamp, String)>,
    /// The last of the chat's messages delivered (or passed) to this webhook.
    cursor: u64,
}

/// A chat's messages after `cursor`.
fn messages_after<'a>(messages: &'a Messages, chat_id: &str, cursor: u64) -> &'a [Message] {
    let log = ChatId::parse(chat_id)
        .ok()
        .and_then(|id| messages.get(&id))
        .map_or(&[][..], Vec::as_slice);
    log.get(usize::try_from(cursor).unwrap_or(usize::MAX)..)
        .unwrap_or(&[])
}

impl Outbox {
    fn takes(&self, webhook_id: &str, kind: &str) -> bool {
        self.webhooks
            .get(webhook_id)
            .is_some_and(|w| w.events.iter().any(|k| k == kind))
    }

    fn add_row(&mut self, row: Row) -> i64 {
        self.last_id += 1;
        self.deliveries.insert(self.last_id, row);
        self.last_id
    }

    /// Writes a change's events: a row per webhook whose filter takes a chat's change,
    /// and the lane each event waits in (a new lane's cursor just before it).
    pub(super) fn record(&mut self, events: &[OutboxEvent]) {
        for event in events {
            let takers: Vec<String> = self
                .webhooks
                .values()
                .filter(|w| w.events.iter().any(|k| k == event.kind))
                .map(|w| w.id.clone())
                .collect();
            let chat_id = event.chat_id.to_string();
            let message = event.kind == "new_message";
            for webhook_id in takers {
                if !message {
                    self.add_row(Row {
                        webhook_id: webhook_id.clone(),
                        chat_id: chat_id.clone(),
                        event_id: event.event_id.clone(),
                        kind: event.kind.to_string(),
                        body: event.body.clone(),
                        created_at: event.created_at,
                        queued_at: event.created_at,
                        attempts: 0,
                        last_error: None,
                        last_attempt_at: None,
                        dead: false,
                        after_seq: event.position,
                    });
                }
                self.lanes
                    .entry((webhook_id, chat_id.clone()))
                    .or_insert(Lane {
                        next_attempt_at: event.created_at,
                        lease: None,
                        cursor: event.position.saturating_sub(u64::from(message)),
                    });
            }
        }
    }

    fn holds(&self, key: &(String, String), token: &str) -> bool {
        self.lanes
            .get(key)
            .and_then(|l| l.lease.as_ref())
            .is_some_and(|(_, t)| t == token)
    }

    /// A lane's rows pending, in its chat's order.
    fn rows_in(&self, key: &(String, String)) -> Vec<(&i64, &Row)> {
        let mut rows: Vec<_> = self
            .deliveries
            .iter()
            .filter(move |(_, r)| !r.dead && r.webhook_id == key.0 && r.chat_id == key.1)
            .collect();
        rows.sort_by_key(|(id, r)| (r.after_seq, **id));
        rows
    }

    /// A lane's messages pending: after its cursor, when its webhook takes them.
    fn messages_in<'a>(&self, key: &(String, String), messages: &'a Messages) -> &'a [Message] {
        match self.lanes.get(key) {
            Some(lane) if self.takes(&key.0, "new_message") => {
                messages_after(messages, &key.1, lane.cursor)
            }
            _ => &[],
        }
    }

    fn first_pending(
        &self,
        key: &(String, String),
        batch: u32,
        messages: &Messages,
    ) -> Vec<PendingDelivery> {
        let rows = self.rows_in(key).into_iter().map(|(id, r)| {
            (
                r.after_seq,
                PendingDelivery {
                    id: *id,
                    event_id: r.event_id.clone(),
                    kind: r.kind.clone(),
                    body: r.body.clone(),
                    queued_at: r.queued_at,
                    attempts: r.attempts,
                },
            )
        });
        let sent = self.messages_in(key, messages).iter().cloned();
        merge_lane(rows, sent, batch.max(1) as usize)
    }

    fn pending_count(&self, key: &(String, String), messages: &Messages) -> usize {
        self.rows_in(key).len() + self.messages_in(key, messages).len()
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let created_at = s
            .outbox
            .webhooks
            .get(&webhook.id)
            .map_or(webhook.created_at, |w| w.created_at);
        // A webhook that starts taking messages takes those from now on.
        let starts = s.outbox.webhooks.contains_key(&webhook.id)
            && !s.outbox.takes(&webhook.id, "new_message")
            && webhook.events.iter().any(|k| k == "new_message");
        if starts {
            for ((w, chat), lane) in s.outbox.lanes.iter_mut() {
                if *w == webhook.id {
                    let last = ChatId::parse(chat.as_str())
                        .ok()
                        .and_then(|id| s.messages.get(&id))
                        .map_or(0, Vec::len);
                    lane.cursor = lane.cursor.max(last as u64);
                }
            }
        }
        s.outbox.webhooks.insert(
            webhook.id.clone(),
            WebhookRecord {
                created_at,
                ..webhook.clone()
            },
        );
        Ok(())
    }

    async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        let s = self.state()?;
        let o = &s.outbox;
        Ok(o.webhooks
            .values()
            .map(|w| {
                let dead = o
                    .deliveries
                    .values()
                    .filter(|r| r.webhook_id == w.id && r.dead)
                    .count();
                let pending: usize = o
                    .lanes
                    .keys()
                    .filter(|(id, _)| *id == w.id)
                    .map(|key| o.pending_count(key, &s.messages))
                    .sum();
                Webhook {
                    id: w.id.clone(),
                    url: w.url.clone(),
                    events: w.events.clone(),
                    created_at: w.created_at,
                    pending: pending as u64,
                    dead: dead as u64,
                }
            })
            .collect())
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let mut s = self.state()?;
        let o = &mut s.outbox;
        if o.webhooks.remove(id).is_none() {
            return Ok(false);
        }
        o.deliveries.retain(|_, r| r.webhook_id != id);
        o.lanes.retain(|(w, _), _| w != id);
        Ok(true)
    }

    async fn webhook_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<WebhookDelivery>> {
        let s = self.state()?;
        Ok(s.outbox
            .deliveries
            .range(q.after_id.map_or(i64::MIN, |a| a.saturating_add(1))..)
            .filter(|(_, r)| r.dead == q.dead)
            .filter(|(_, r)| q.webhook_id.as_ref().is_none_or(|w| *w == r.webhook_id))
            .take(q.limit as usize)
            .map(|(id, r)| WebhookDelivery {
                id: *id,
                webhook_id: r.webhook_id.clone(),
                event_id: r.event_id.clone(),
                kind: r.kind.clone(),
                chat_id: r.chat_id.clone(),
                created_at: r.created_at,
                attempts: r.attempts,
                last_error: r.last_error.clone(),
                last_attempt_at: r.last_attempt_at,
                state: if r.dead { "dead" } else { "pending" }.into(),
            })
            .collect())
    }

    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let o = &mut s.outbox;
        let mut retried = 0;
        let mut lanes = Vec::new();
        for (id, r) in o.deliveries.iter_mut() {
            if !r.dead
                || webhook_id.is_some_and(|w| w != r.webhook_id)
                || delivery_id.is_some_and(|d| d != *id)
            {
                continue;
            }
            r.dead = false;
            r.attempts = 0;
            r.queued_at = now;
            retried += 1;
            lanes.push((r.webhook_id.clone(), r.chat_id.clone()));
        }
        for key in lanes {
            // A lane made again starts after its chat's messages so far.
            let last = ChatId::parse(key.1.as_str())
                .ok()
                .and_then(|id| s.messages.get(&id))
                .map_or(0, Vec::len) as u64;
            o.lanes
                .entry(key)
                .and_modify(|l| l.next_attempt_at = l.next_attempt_at.min(now))
                .or_insert(Lane {
                    next_attempt_at: now,
                    lease: None,
                    cursor: last,
                });
        }
        Ok(retried)
    }

    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let o = &mut s.outbox;
        let mut due: Vec<_> = o
            .lanes
            .iter()
            .filter(|(_, l)| l.next_attempt_at <= claim.now)
            .filter(|(_, l)| {
                l.lease
                    .as_ref()
                    .is_none_or(|(until, _)| *until <= claim.now)
            })
            .map(|(key, l)| (l.next_attempt_at, key.clone()))
            .collect();
        due.sort();
        let mut claimed = Vec::new();
        for (_, key) in due.into_iter().take(claim.lanes as usize) {
            let Some(webhook) = o.webhooks.get(&key.0) else {
                continue;
            };
            let deliveries = o.first_pending(&key, claim.batch, &s.messages);
            claimed.push(ClaimedLane {
                webhook_id: key.0.clone(),
                chat_id: key.1.clone(),
                url: webhook.url.clone(),
                secret: webhook.secret.clone(),
                deliveries,
            });
            if let Some(lane) = o.lanes.get_mut(&key) {
                lane.lease = Some((claim.lease_until, claim.token.clone()));
            }
        }
        Ok(claimed)
    }

    async fn settle_deliveries(
        &self,
        webhook_id: &str,
        chat_id: &str,
        token: &str,
        settlement: &Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let o = &mut s.outbox;
        let key = (webhook_id.to_string(), chat_id.to_string());
        let mut cursor = None;
        for id in &settlement.delivered {
            if *id < 0 {
                cursor = cursor.max(Some(id.unsigned_abs()));
            } else {
                o.deliveries.remove(id);
            }
        }
        if let Some(failed) = &settlement.failed {
            if failed.delivery < 0 {
                // A message's failed delivery becomes a row, just before the message in
                // the lane's order, and the cursor passes it.
                let seq = failed.delivery.unsigned_abs();
                // Only while the lane is this claim's (another claimant may have
                // delivered it since, and its cursor passed it).
                let ahead =
                    o.holds(&key, token) && o.lanes.get(&key).is_some_and(|l| l.cursor < seq);
                let message = messages_after(&s.messages, chat_id, seq - 1)
                    .first()
                    .filter(|_| ahead);
                if let Some(m) = message {
                    let d = PendingDelivery::of_message(m);
                    o.add_row(Row {
                        webhook_id: webhook_id.to_string(),
                        chat_id: chat_id.to_string(),
                        event_id: d.event_id,
                        kind: d.kind,
                        body: d.body,
                        created_at: m.created_at,
                        queued_at: m.created_at,
                        attempts: 1,
                        last_error: Some(failed.error.clone()),
                        last_attempt_at: Some(now),
                        dead: failed.retry_at.is_none(),
                        after_seq: seq - 1,
                    });
                    cursor = cursor.max(Some(seq));
                }
            } else if let Some(r) = o.deliveries.get_mut(&failed.delivery) {
                r.attempts += 1;
                r.last_error = Some(failed.error.clone());
                r.last_attempt_at = Some(now);
                r.dead = failed.retry_at.is_none();
            }
        }
        if let (Some(cursor), Some(lane)) = (cursor, o.lanes.get_mut(&key)) {
            lane.cursor = lane.cursor.max(cursor);
        }
        if !o.holds(&key, token) {
            return Ok(Settled::Lost);
        }
        let (lease, next) = settlement.lane_after();
        if let (Some(then_next), Some(_)) = (settlement.then_next, lease) {
            if o.pending_count(&key, &s.messages) == 0 {
                o.lanes.remove(&key);
                return Ok(Settled::Emptied);
            }
            if then_next == 0 {
                if let Some(lane) = o.lanes.get_mut(&key) {
                    lane.lease = None;
                    lane.next_attempt_at = now;
                }
                return Ok(Settled::Released);
            }
            let more = o.first_pending(&key, then_next, &s.messages);
            if let Some(lane) = o.lanes.get_mut(&key) {
                lane.lease = lease.map(|until| (until, token.to_string()));
            }
            return Ok(Settled::More(more));
        }
        if let Some(lane) = o.lanes.get_mut(&key) {
            lane.lease = lease.map(|until| (until, token.to_string()));
            if let Some(next) = next {
                lane.next_attempt_at = next;
            }
        }
        Ok(Settled::Held)
    }

    async fn release_webhook_leases(&self) -> StoreResult<u64> {
        let mut s = self.state()?;
        let mut held = 0;
        for lane in s.outbox.lanes.values_mut() {
            held += u64::from(lane.lease.take().is_some());
        }
        Ok(held)
    }
}
