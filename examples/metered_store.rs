//! A custom `Store`: a wrapper that counts the calls and time of every operation of
//! another store (here SQLite). It passes chatcore's store conformance suite, the same
//! tests the built-in stores pass, and then serves a `ChatService` unchanged.
//!
//! Run: `cargo run --example metered_store`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatcore::store::{
    AppendOutcome, Counts, Heartbeat, NewChat, NewMessage, OfficerRecord, OfficerUpdate, PageQuery,
    QueueKey, ReadOutcome, SessionRecord, StoreResult, TokenHash, Transition, TransitionOutcome,
};
use chatcore::store::{
    ClaimedLane, DeliveryQuery, LaneClaim, Settled, Settlement, WebhookRecord, WebhookStore,
};
use chatcore::{
    Chat, ChatId, ChatService, ChatStatus, CustomerId, CustomerLogin, LocalBus, Message, Officer,
    OfficerId, SendMessage, SenderType, ServiceConfig, SqliteStore, Store, Timestamp,
};

/// Calls and total time per operation, shared by every wrapper that reports here.
#[derive(Default)]
struct Meter {
    calls: Mutex<BTreeMap<&'static str, (u64, Duration)>>,
}

impl Meter {
    fn snapshot(&self) -> BTreeMap<&'static str, (u64, Duration)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Any store, metered.
struct MeteredStore<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S: Store> MeteredStore<S> {
    async fn measure<T>(&self, op: &'static str, f: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        if let Ok(mut calls) = self.meter.calls.lock() {
            let entry = calls.entry(op).or_default();
            entry.0 += 1;
            entry.1 += start.elapsed();
        }
        out
    }
}

/// The webhooks' outbox, metered the same way (its events are written by the inner
/// store's own changes).
#[async_trait]
impl<S: Store> WebhookStore for MeteredStore<S> {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        self.measure("put_webhook", self.inner.put_webhook(webhook))
            .await
    }
    async fn webhooks(&self) -> StoreResult<Vec<chatcore::Webhook>> {
        self.measure("webhooks", self.inner.webhooks()).await
    }
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        self.measure("delete_webhook", self.inner.delete_webhook(id))
            .await
    }
    async fn webhook_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> StoreResult<Vec<chatcore::WebhookDelivery>> {
        self.measure("webhook_deliveries", self.inner.webhook_deliveries(query))
            .await
    }
    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let retried = self
            .inner
            .retry_dead_deliveries(webhook_id, delivery_id, now);
        self.measure("retry_dead_deliveries", retried).await
    }
    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        self.measure("claim_webhook_lanes", self.inner.claim_webhook_lanes(claim))
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
        let settled = self
            .inner
            .settle_deliveries(webhook_id, chat_id, token, settlement, now);
        self.measure("settle_deliveries", settled).await
    }
    async fn release_webhook_leases(&self) -> StoreResult<u64> {
        self.measure(
            "release_webhook_leases",
            self.inner.release_webhook_leases(),
        )
        .await
    }
}

#[async_trait]
impl<S: Store> Store for MeteredStore<S> {
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()> {
        self.measure("create_officer", self.inner.create_officer(officer))
            .await
    }
    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        self.measure("officer", self.inner.officer(id)).await
    }
    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        self.measure("officers", self.inner.officers()).await
    }
    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        self.measure("get_or_create_chat", self.inner.get_or_create_chat(new))
            .await
    }
    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        self.measure("chat", self.inner.chat(id)).await
    }
    async fn counts(&self) -> StoreResult<Counts> {
        self.measure("counts", self.inner.counts()).await
    }
    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.measure("pending_chats", self.inner.pending_chats(limit))
            .await
    }
    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>> {
        self.measure(
            "officer_chats",
            self.inner.officer_chats(officer, status, limit),
        )
        .await
    }
    async fn customer_chats(&self, customer: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>> {
        self.measure("customer_chats", self.inner.customer_chats(customer, limit))
            .await
    }

    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome> {
        self.measure("transition", self.inner.transition(change))
            .await
    }

    async fn append_message(&self, message: &NewMessage) -> StoreResult<AppendOutcome> {
        self.measure("append_message", self.inner.append_message(message))
            .await
    }
    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        self.measure("messages", self.inner.messages(chat, page))
            .await
    }
    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        self.measure(
            "sent_message",
            self.inner.sent_message(chat, sender_type, sender_id, key),
        )
        .await
    }
    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        self.measure("last_seq", self.inner.last_seq(chat)).await
    }
    async fn attachment(&self, id: &chatcore::AttachmentId) -> StoreResult<Option<Message>> {
        self.measure("attachment", self.inner.attachment(id)).await
    }
    async fn blob_in_use(&self, blob: &chatcore::BlobId) -> StoreResult<bool> {
        self.measure("blob_in_use", self.inner.blob_in_use(blob))
            .await
    }
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<bool> {
        self.measure("create_session", self.inner.create_session(session))
            .await
    }
    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.measure("session", self.inner.session(token_hash))
            .await
    }
    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool> {
        self.measure("delete_session", self.inner.delete_session(token_hash))
            .await
    }
    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>> {
        self.measure("update_officer", self.inner.update_officer(officer, update))
            .await
    }
    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>> {
        self.measure(
            "set_presence",
            self.inner.set_presence(node, officer, present, now),
        )
        .await
    }
    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat> {
        self.measure(
            "node_heartbeat",
            self.inner.node_heartbeat(node, now, stale_before),
        )
        .await
    }
    async fn eligible_officers(
        &self,
        default_capacity: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Officer>> {
        self.measure(
            "eligible_officers",
            self.inner.eligible_officers(default_capacity, limit),
        )
        .await
    }
    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>> {
        self.measure("queue_keys", self.inner.queue_keys(limit))
            .await
    }
    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome> {
        self.measure("mark_read", self.inner.mark_read(chat, side, seq))
            .await
    }
    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>> {
        self.measure("entries", self.inner.entries(keys)).await
    }
    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        self.measure(
            "set_officer_disabled",
            self.inner.set_officer_disabled(officer, disabled),
        )
        .await
    }
    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.measure(
            "purge_expired_sessions",
            self.inner.purge_expired_sessions(now),
        )
        .await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.measure("ping", self.inner.ping()).await
    }
    async fn close(&self) -> StoreResult<()> {
        self.measure("close", self.inner.close()).await
    }

    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<chatcore::MessageId>> {
        self.measure("first_reply", self.inner.first_reply(chat))
            .await
    }

    async fn desk_report(
        &self,
        period: chatcore::ReportPeriod,
    ) -> StoreResult<chatcore::DeskReport> {
        self.measure("desk_report", self.inner.desk_report(period))
            .await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("chatcore-metered-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let meter = Arc::new(Meter::default());

    // 1. The conformance suite, each case on a fresh metered SQLite file. It panics on
    //    the first violation, so reaching the next line means every case passed.
    let counter = std::sync::atomic::AtomicUsize::new(0);
    chatcore::conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.join(format!("case-{n}.db"));
        let meter = meter.clone();
        async move {
            let inner = SqliteStore::open(path).expect("open SQLite");
            Arc::new(MeteredStore { inner, meter }) as Arc<dyn Store>
        }
    })
    .await;
    println!(
        "conformance: all {} cases passed on MeteredStore<SqliteStore>",
        chatcore::conformance::CASES.len()
    );

    // 2. The same wrapper under a service, as an embedder would use it.
    let service_meter = Arc::new(Meter::default());
    let store = MeteredStore {
        inner: SqliteStore::open(dir.join("service.db"))?,
        meter: service_meter.clone(),
    };
    let service = ChatService::new(
        Arc::new(store),
        Arc::new(LocalBus::new()),
        ServiceConfig::default(),
    );
    let login = service
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("metered-customer")?,
            officer_id: None,
            signature: None,
        })
        .await?;
    let customer = service.authenticate(&login.token).await?.actor;
    for i in 0..10 {
        service
            .send_message(
                &customer,
                login.chat.id,
                SendMessage::text(format!("message {i}")),
            )
            .await?;
    }
    service.close().await?;
    println!("service calls (operation: calls, mean time):");
    for (op, (calls, total)) in service_meter.snapshot() {
        let mean = total / u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
        println!("  {op}: {calls}, {mean:?}");
    }
    let suite = meter.snapshot();
    println!(
        "the suite made {} store calls",
        suite.values().map(|(calls, _)| calls).sum::<u64>()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
