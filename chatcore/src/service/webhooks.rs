//! Webhooks in the service: the admin's operations (create, list, delete, deliveries,
//! retry of dead ones) and the delivery worker ([`ChatService::start_webhooks`]).
//!
//! The worker reads the outbox, never the bus: an event exists once its change is
//! committed (the store wrote both in one transaction), whatever happens to this
//! process after. It claims lanes (one webhook, one chat) under a lease, sends each
//! lane's events one at a time in order through a [`WebhookSender`], and records each
//! outcome before the next: delivered (the row goes), failed (the lane waits out an
//! exponential backoff with jitter; other lanes go on), or failed past the retry period
//! (dead; the lane goes on with its next event). At most `concurrency` lanes are in
//! flight, each holding at most `batch` events, so memory does not grow with the
//! backlog, which stays on disk. This node's own changes wake it at once while it knows
//! of a webhook (with none, a change wakes nothing); a poll finds other nodes' changes
//! and retries coming due.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::ChatService;
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::policy;
use crate::store::{
    ClaimedLane, DeliveryQuery, Failure, LaneClaim, Settled, Settlement, WebhookRecord,
};
use crate::webhooks::{
    CreatedWebhook, Webhook, WebhookDelivery, WebhookRequest, WebhookResponse, WebhookSecret,
    WebhookSender, backoff, check_url, parse_events, signature,
};

/// The id of the webhook `--webhook-url` configures.
pub const FLAG_WEBHOOK_ID: &str = "flag";

/// The shortest time between two claims (a burst of changes wakes the worker once).
const CLAIM_GAP: Duration = Duration::from_millis(5);
/// How long a claim goes on with a lane whose chat keeps adding events before it lets
/// the lane go (to the back of the queue), so that a busy chat cannot keep a slot from
/// the others.
const LANE_HOLD: Duration = Duration::from_secs(1);
/// How long a claim that goes on with a busy lane (events came while its last batch was
/// out) lets events gather before the write that records a batch that was not full and
/// reads the next: one write and one read for several events, at the cost of their
/// arriving up to this much later.
const LANE_LINGER: Duration = Duration::from_millis(20);
/// How often the backlog's gauges are read from the store.
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// Most deliveries in one listing.
pub const MAX_DELIVERY_PAGE: u32 = 1000;
/// Most webhooks the admin may create (each one is a write per event in every change's
/// transaction, so they are bounded like everything else a client can make the server
/// hold). The flags' webhook does not count against it.
pub const MAX_WEBHOOKS: usize = 16;

/// Input of [`ChatService::create_webhook`] (no `Debug`: it holds a secret).
#[derive(Clone, Default)]
pub struct NewWebhook {
    /// Where to POST events: a URL with one of the transport's schemes
    /// ([`crate::WebhookSettings::schemes`]; chat-http sends to `http` and `https`).
    pub url: String,
    /// The signing secret; `None`: a random one, returned once.
    pub secret: Option<String>,
    /// The events it receives (`None` or empty: all).
    pub events: Option<Vec<String>>,
}

/// The running delivery worker; [`WebhookWorker::stop`] ends it, and so does dropping
/// it.
pub struct WebhookWorker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookWorker {
    /// Stops claiming, waits for the requests in flight (each bounded by the timeout),
    /// and ends. What was not settled is sent again later: by this process after a
    /// restart, or by another node once the lease expires.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl ChatService {
    fn webhook_record(
        &self,
        id: String,
        url: String,
        secret: WebhookSecret,
        events: Option<&[String]>,
    ) -> Result<WebhookRecord> {
        check_url(&url, self.config().webhooks.schemes.as_slice())?;
        Ok(WebhookRecord {
            id,
            url,
            secret,
            events: parse_events(events)?,
            created_at: self.now(),
        })
    }

    /// Creates a webhook (the admin only): every later event its filter takes is
    /// delivered to it. Answers the secret this once.
    pub async fn create_webhook(&self, actor: &Actor, new: NewWebhook) -> Result<CreatedWebhook> {
        policy::manage_webhooks(actor)?;
        let secret = match new.secret {
            Some(secret) => WebhookSecret::new(secret)?,
            None => WebhookSecret::generate(),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let record = self.webhook_record(id, new.url, secret, new.events.as_deref())?;
        let existing = self.inner.store.webhooks().await?;
        if existing.iter().filter(|w| w.id != FLAG_WEBHOOK_ID).count() >= MAX_WEBHOOKS {
            return Err(Error::InvalidField {
                name: "url",
                reason: format!(
                    "this server takes at most {MAX_WEBHOOKS} webhooks besides --webhook-url; \
                     delete one first"
                ),
            });
        }
        self.webhook_set();
        self.inner.store.put_webhook(&record).await?;
        tracing::info!(webhook = %record.id, events = ?record.events, "webhook created");
        Ok(CreatedWebhook {
            webhook: Webhook {
                id: record.id,
                url: record.url,
                events: record.events,
                created_at: record.created_at,
                pending: 0,
                dead: 0,
            },
            secret: record.secret.expose().to_string(),
        })
    }

    /// Sets the webhook of the server's flags (`--webhook-url`, `--webhook-secret`),
    /// id [`FLAG_WEBHOOK_ID`]: created, or its url, secret and filter replaced (its
    /// deliveries stay). Every node started with the same flags sets the same one.
    pub async fn set_flag_webhook(
        &self,
        actor: &Actor,
        url: String,
        secret: String,
        events: Option<Vec<String>>,
    ) -> Result<Webhook> {
        policy::manage_webhooks(actor)?;
        let secret = WebhookSecret::new(secret)?;
        let record = self.webhook_record(FLAG_WEBHOOK_ID.into(), url, secret, events.as_deref())?;
        self.webhook_set();
        self.inner.store.put_webhook(&record).await?;
        tracing::info!(webhook = FLAG_WEBHOOK_ID, events = ?record.events, "webhook set from the flags");
        self.webhook(actor, FLAG_WEBHOOK_ID).await
    }

    /// Notes that a webhook is being set on this node: from now on this node's changes
    /// wake the worker (before the write, so that none of its events waits for a poll).
    fn webhook_set(&self) {
        self.inner.webhooks_set.fetch_add(1, Ordering::SeqCst);
        self.inner.webhooks_maybe.store(true, Ordering::SeqCst);
    }

    /// Records what a read of the webhooks that began when `set_before` webhooks had
    /// been set on this node found: with none, changes stop waking the worker, unless a
    /// webhook was set meanwhile.
    fn webhooks_found(&self, any: bool, set_before: u64) {
        self.inner.webhooks_maybe.store(any, Ordering::SeqCst);
        if !any && self.inner.webhooks_set.load(Ordering::SeqCst) != set_before {
            self.inner.webhooks_maybe.store(true, Ordering::SeqCst);
        }
    }

    /// Every webhook with its pending and dead deliveries (never a secret).
    pub async fn webhooks(&self, actor: &Actor) -> Result<Vec<Webhook>> {
        policy::manage_webhooks(actor)?;
        Ok(self.inner.store.webhooks().await?)
    }

    /// One webhook ([`Error::WebhookNotFound`] when none has that id).
    pub async fn webhook(&self, actor: &Actor, id: &str) -> Result<Webhook> {
        self.webhooks(actor)
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or(Error::WebhookNotFound)
    }

    /// Deletes a webhook and its deliveries, pending and dead.
    pub async fn delete_webhook(&self, actor: &Actor, id: &str) -> Result<()> {
        policy::manage_webhooks(actor)?;
        if !self.inner.store.delete_webhook(id).await? {
            return Err(Error::WebhookNotFound);
        }
        tracing::info!(webhook = %id, "webhook deleted");
        Ok(())
    }

    /// Pending or dead deliveries, oldest first: of one webhook or all, after a
    /// delivery id, at most `limit` (1 to [`MAX_DELIVERY_PAGE`]).
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        query: DeliveryQuery,
    ) -> Result<Vec<WebhookDelivery>> {
        policy::manage_webhooks(actor)?;
        if !(1..=MAX_DELIVERY_PAGE).contains(&query.limit) {
            return Err(Error::InvalidParameter {
                name: "limit",
                reason: format!("must be 1 to {MAX_DELIVERY_PAGE}"),
            });
        }
        if let Some(id) = &query.webhook_id {
            self.webhook(actor, id).await?;
        }
        Ok(self.inner.store.webhook_deliveries(&query).await?)
    }

    /// Makes dead deliveries pending again, due now, with a fresh retry period: all of
    /// them, one webhook's, or one delivery. Returns how many.
    /// [`Error::WebhookNotFound`] for a webhook that does not exist, or one delivery
    /// that is not dead.
    pub async fn retry_webhook_deliveries(
        &self,
        actor: &Actor,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
    ) -> Result<u64> {
        policy::manage_webhooks(actor)?;
        if let Some(id) = webhook_id {
            self.webhook(actor, id).await?;
        }
        let retried = self
            .inner
            .store
            .retry_dead_deliveries(webhook_id, delivery_id, self.now())
            .await?;
        if delivery_id.is_some() && retried == 0 {
            return Err(Error::WebhookNotFound);
        }
        if retried > 0 {
            tracing::info!(retried, webhook = ?webhook_id, "dead webhook deliveries retried");
            self.inner.webhook_wake.notify_one();
        }
        Ok(retried)
    }

    /// Starts this node's delivery worker, sending through `sender`. Start one per
    /// service; stop it before closing the store.
    pub fn start_webhooks(&self, sender: Arc<dyn WebhookSender>) -> WebhookWorker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(work(self.clone(), sender, stopped));
        WebhookWorker { stop, task }
    }
}

async fn work(
    service: ChatService,
    sender: Arc<dyn WebhookSender>,
    mut stop: watch::Receiver<bool>,
) {
    let settings = service.config().webhooks.clone();
    if settings.single_node {
        match service.inner.store.release_webhook_leases().await {
            Ok(0) => {}
            Ok(held) => tracing::info!(held, "webhook deliveries of a previous run taken over"),
            Err(e) => tracing::warn!(error = %e, "cannot take over the webhooks' leases"),
        }
    }
    let mut running: JoinSet<()> = JoinSet::new();
    let mut gauges_read: Option<Instant> = None;
    let mut failing = false;
    loop {
        let free = settings.concurrency.saturating_sub(running.len());
        if free > 0 {
            let now = service.now();
            let claim = LaneClaim {
                now,
                lease_until: now.plus(settings.lease),
                token: uuid::Uuid::now_v7().to_string(),
                lanes: u32::try_from(free).unwrap_or(u32::MAX),
                batch: settings.batch.max(1),
            };
            match service.inner.store.claim_webhook_lanes(&claim).await {
                Ok(lanes) => {
                    failing = false;
                    for lane in lanes {
                        running.spawn(deliver_lane(
                            service.clone(),
                            sender.clone(),
                            lane,
                            claim.token.clone(),
                        ));
                    }
                }
                Err(e) => {
                    // Said once per outage, not once per poll.
                    if !failing {
                        tracing::warn!(error = %e, "cannot read the webhooks' outbox");
                    }
                    failing = true;
                }
            }
        }
        if gauges_read.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
            gauges_read = Some(Instant::now());
            let set_before = service.inner.webhooks_set.load(Ordering::SeqCst);
            if let Ok(webhooks) = service.inner.store.webhooks().await {
                service.webhooks_found(!webhooks.is_empty(), set_before);
                let pending: u64 = webhooks.iter().map(|w| w.pending).sum();
                let dead: u64 = webhooks.iter().map(|w| w.dead).sum();
                metrics::gauge!("chat_webhook_deliveries_pending").set(pending as f64);
                metrics::gauge!("chat_webhook_deliveries_dead").set(dead as f64);
            }
        }
        let full = running.len() >= settings.concurrency;
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = service.inner.webhook_wake.notified(), if !full => {
                tokio::time::sleep(CLAIM_GAP).await;
            }
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
    // The requests in flight end within their timeout; what they did not settle is
    // sent again later (at least once).
    while running.join_next().await.is_some() {}
}

/// Sends a claimed lane's events in order; stops at the first failure to retry (the
/// lane then waits out its backoff) or when the lease was lost. Outcomes are recorded
/// in one write per batch (and at least every third of the lease, which that renews), so
/// that a busy chat's events cost the store one write per batch, not one each: a crash
/// between a 2xx and its record sends that event again (at least once). The batch's
/// last write also deletes the lane when it is empty; when events came meanwhile, it
/// reads them, and the claim goes on with them (no new claim) for up to [`LANE_HOLD`],
/// then lets the lane go to the back of the queue, so that other lanes get their turn.
async fn deliver_lane(
    service: ChatService,
    sender: Arc<dyn WebhookSender>,
    lane: ClaimedLane,
    token: String,
) {
    let settings = &service.config().webhooks;
    let renew_every = settings.lease / 3;
    let claimed_at = Instant::now();
    let mut settled_at = claimed_at;
    let mut delivered = Vec::new();
    // Whether events came while the claim's last batch was out.
    let mut busy = false;
    let ClaimedLane {
        webhook_id,
        chat_id,
        url,
        secret,
        mut deliveries,
    } = lane;
    let record = async |settlement: &Settlement, now| {
        settle(&service, &webhook_id, &chat_id, &token, settlement, now).await
    };
    loop {
        let full = deliveries.len() >= settings.batch as usize;
        for mut delivery in deliveries {
            let body = Bytes::from(std::mem::take(&mut delivery.body));
            let request = WebhookRequest {
                url: url.clone(),
                event_id: delivery.event_id.clone(),
                kind: delivery.kind.clone(),
                signature: signature(
                    secret.expose().as_bytes(),
                    service.now().unix_millis().div_euclid(1000),
                    &body,
                ),
                body,
                timeout: settings.timeout,
            };
            let response = sender.send(request).await;
            let now = service.now();
            let error = match response {
                WebhookResponse::Status(code) if (200..300).contains(&code) => None,
                WebhookResponse::Status(code) => Some(format!("HTTP {code}")),
                WebhookResponse::Failed(reason) => Some(reason),
            };
            let Some(error) = error else {
                metrics::counter!("chat_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                tracing::debug!(
                    webhook = %webhook_id, chat = %chat_id, event = %delivery.event_id,
                    "webhook delivered"
                );
                delivered.push(delivery.id);
                if settled_at.elapsed() >= renew_every {
                    let settlement = Settlement {
                        delivered: std::mem::take(&mut delivered),
                        failed: None,
                        lease_until: now.plus(settings.lease),
                        then_next: None,
                    };
                    if record(&settlement, now).await == Settled::Lost {
                        return;
                    }
                    settled_at = Instant::now();
                }
                continue;
            };
            let failure = failed(settings, &webhook_id, &chat_id, &delivery, error, now);
            let retry_at = failure.retry_at;
            let settlement = Settlement {
                delivered: std::mem::take(&mut delivered),
                failed: Some(failure),
                lease_until: now.plus(settings.lease),
                then_next: None,
            };
            if record(&settlement, now).await == Settled::Lost || retry_at.is_some() {
                return;
            }
            settled_at = Instant::now();
        }
        // The batch is through: recorded in one write, which deletes the lane if nothing
        // came meanwhile, else reads the next batch, or lets the lane go once the claim
        // has kept it for its turn.
        let keep = claimed_at.elapsed() < LANE_HOLD;
        if keep && busy && !full {
            // The chat keeps adding events: let a few gather, so that one record and one
            // read cover them all.
            tokio::time::sleep(LANE_LINGER).await;
        }
        let now = service.now();
        let settlement = Settlement {
            delivered: std::mem::take(&mut delivered),
            failed: None,
            lease_until: now.plus(settings.lease),
            then_next: Some(if keep { settings.batch.max(1) } else { 0 }),
        };
        match record(&settlement, now).await {
            Settled::More(next) => deliveries = next,
            Settled::Lost | Settled::Held | Settled::Emptied | Settled::Released => return,
        }
        busy = true;
        settled_at = Instant::now();
    }
}

/// A failed attempt: retried after a backoff with jitter, or dead once the retry period
/// (counted from when the event was queued) is over; counted and logged.
fn failed(
    settings: &crate::webhooks::WebhookSettings,
    webhook_id: &str,
    chat_id: &str,
    delivery: &crate::store::PendingDelivery,
    error: String,
    now: crate::model::Timestamp,
) -> Failure {
    let attempts = delivery.attempts.saturating_add(1);
    let deadline = delivery.queued_at.plus(settings.max_age);
    let retry_at = (now < deadline).then(|| {
        let wait = backoff(
            attempts,
            settings.backoff_min,
            settings.backoff_max,
            rand::random::<f64>(),
        );
        now.plus(wait).min(deadline)
    });
    match retry_at {
        Some(at) => {
            metrics::counter!("chat_webhook_deliveries_total", "outcome" => "retried").increment(1);
            tracing::info!(
                webhook = %webhook_id, chat = %chat_id, event = %delivery.event_id,
                %error, attempts, next = %at, "webhook delivery failed; will retry"
            );
        }
        None => {
            metrics::counter!("chat_webhook_deliveries_total", "outcome" => "dead").increment(1);
            tracing::warn!(
                webhook = %webhook_id, chat = %chat_id, event = %delivery.event_id,
                %error, attempts,
                "webhook delivery failed for the whole retry period; marked dead"
            );
        }
    }
    Failure {
        delivery: delivery.id,
        error,
        retry_at,
    }
}

/// Records a lane's outcomes; [`Settled::Lost`] when the lane is no longer this claim's
/// (another node took it over, or the record failed and the lease will expire), so
/// that the caller stops.
async fn settle(
    service: &ChatService,
    webhook_id: &str,
    chat_id: &str,
    token: &str,
    settlement: &Settlement,
    now: crate::model::Timestamp,
) -> Settled {
    let held = service
        .inner
        .store
        .settle_deliveries(webhook_id, chat_id, token, settlement, now)
        .await;
    match held {
        Ok(held) => held,
        Err(e) => {
            // Unrecorded: those events are sent again once the lease expires.
            tracing::warn!(error = %e, webhook = %webhook_id, "cannot record webhook deliveries");
            Settled::Lost
        }
    }
}
