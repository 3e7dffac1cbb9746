//! The webhooks' outbox of [`MemoryStore`]: the same tables as the SQL stores (webhooks,
//! deliveries, lanes) as maps inside the store's one lock, so that a change and its
//! events are written under the same lock. Nothing survives the process.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::memory::MemoryStore;
use super::{
    ClaimedLane, DeliveryQuery, LaneClaim, PendingDelivery, Settled, Settlement, StoreResult,
    WebhookRecord, WebhookStore,
};
use crate::model::Timestamp;
use crate::webhooks::{OutboxEvent, Webhook, WebhookDelivery};

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
}

struct Lane {
    next_attempt_at: Timestamp,
    lease: Option<(Timestamp, String)>,
}

impl Outbox {
    /// Writes a change's events: one delivery per webhook whose filter takes it, and
    /// the lane it waits in.
    pub(super) fn record(&mut self, events: &[OutboxEvent]) {
        for event in events {
            for webhook in self.webhooks.values() {
                if !webhook.events.iter().any(|k| k == event.kind) {
                    continue;
                }
                self.last_id += 1;
                let chat_id = event.chat_id.to_string();
                self.deliveries.insert(
                    self.last_id,
                    Row {
                        webhook_id: webhook.id.clone(),
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
                    },
                );
                self.lanes
                    .entry((webhook.id.clone(), chat_id))
                    .or_insert(Lane {
                        next_attempt_at: event.created_at,
                        lease: None,
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

    fn pending_in(&self, key: &(String, String)) -> impl Iterator<Item = (&i64, &Row)> {
        self.deliveries
            .iter()
            .filter(move |(_, r)| !r.dead && r.webhook_id == key.0 && r.chat_id == key.1)
    }

    fn first_pending(&self, key: &(String, String), batch: u32) -> Vec<PendingDelivery> {
        self.pending_in(key)
            .take(batch.max(1) as usize)
            .map(|(id, r)| PendingDelivery {
                id: *id,
                event_id: r.event_id.clone(),
                kind: r.kind.clone(),
                body: r.body.clone(),
                queued_at: r.queued_at,
                attempts: r.attempts,
            })
            .collect()
    }
}

#[async_trait]
impl WebhookStore for MemoryStore {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        let mut s = self.state()?;
        let created_at = s
            .outbox
            .webhooks
            .get(&webhook.id)
            .map_or(webhook.created_at, |w| w.created_at);
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
                let rows = o.deliveries.values().filter(|r| r.webhook_id == w.id);
                let (dead, pending): (Vec<_>, Vec<_>) = rows.partition(|r| r.dead);
                Webhook {
                    id: w.id.clone(),
                    url: w.url.clone(),
                    events: w.events.clone(),
                    created_at: w.created_at,
                    pending: pending.len() as u64,
                    dead: dead.len() as u64,
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
        let mut s = self.state()?;
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
            o.lanes
                .entry(key)
                .and_modify(|l| l.next_attempt_at = l.next_attempt_at.min(now))
                .or_insert(Lane {
                    next_attempt_at: now,
                    lease: None,
                });
        }
        Ok(retried)
    }

    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        let mut s = self.state()?;
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
            let deliveries = o.first_pending(&key, claim.batch);
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
        let mut s = self.state()?;
        let o = &mut s.outbox;
        for id in &settlement.delivered {
            o.deliveries.remove(id);
        }
        if let Some(failed) = &settlement.failed
            && let Some(r) = o.deliveries.get_mut(&failed.delivery)
        {
            r.attempts += 1;
            r.last_error = Some(failed.error.clone());
            r.last_attempt_at = Some(now);
            r.dead = failed.retry_at.is_none();
        }
        let key = (webhook_id.to_string(), chat_id.to_string());
        if !o.holds(&key, token) {
            return Ok(Settled::Lost);
        }
        let (lease, next) = settlement.lane_after();
        if let (Some(then_next), Some(_)) = (settlement.then_next, lease) {
            if o.pending_in(&key).next().is_none() {
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
            let more = o.first_pending(&key, then_next);
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
