//! Regression test of issue 22's finding (docs/PROTOCOL.md, "Findings"): a round of
//! automatic assignment whose chats were all taken by another attempt between its
//! reading of the queue and its writes used to end, leaving the chats after them
//! waiting for the sweep (2 s) although an officer was free. It now reads the queue
//! again. The race is made certain by a store that lets a claim win just before the
//! round's write; time is tokio's paused clock, so "before the sweep" is exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatcore::blob::BlobId;
use chatcore::store::{
    AppendOutcome, Counts, Heartbeat, NewChat, NewMessage, OfficerRecord, OfficerUpdate, PageQuery,
    QueueKey, ReadOutcome, SessionRecord, StoreResult, TokenHash, Transition, TransitionOutcome,
};
use chatcore::store::{
    ClaimedLane, DeliveryQuery, LaneClaim, Settled, Settlement, WebhookRecord, WebhookStore,
};
use chatcore::{
    Actor, Assignment, AttachmentId, Availability, Chat, ChatChange, ChatId, ChatService,
    ChatStatus, CustomerId, CustomerLogin, LocalBus, MemoryStore, Message, MessageId, NewOfficer,
    Officer, OfficerId, SenderType, ServiceConfig, Store, SystemEvent, Timestamp,
};
use chatcore::{DeskReport, ReportPeriod};

/// A `MemoryStore` that, armed with a chat and an officer, lets that officer claim the
/// chat just before the next automatic assignment of it is written.
struct ClaimFirst {
    inner: MemoryStore,
    armed: Mutex<Option<(ChatId, OfficerId)>>,
}

/// The outbox, as the inner store keeps it.
#[async_trait]
impl WebhookStore for ClaimFirst {
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()> {
        self.inner.put_webhook(webhook).await
    }
    async fn webhooks(&self) -> StoreResult<Vec<chatcore::Webhook>> {
        self.inner.webhooks().await
    }
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_webhook(id).await
    }
    async fn webhook_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> StoreResult<Vec<chatcore::WebhookDelivery>> {
        self.inner.webhook_deliveries(query).await
    }
    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        self.inner
            .retry_dead_deliveries(webhook_id, delivery_id, now)
            .await
    }
    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>> {
        self.inner.claim_webhook_lanes(claim).await
    }
    async fn settle_deliveries(
        &self,
        webhook_id: &str,
        chat_id: &str,
        token: &str,
        settlement: &Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled> {
        self.inner
            .settle_deliveries(webhook_id, chat_id, token, settlement, now)
            .await
    }
    async fn release_webhook_leases(&self) -> StoreResult<u64> {
        self.inner.release_webhook_leases().await
    }
}

#[async_trait]
impl Store for ClaimFirst {
    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome> {
        let armed = {
            let mut armed = self.armed.lock().unwrap();
            match &*armed {
                Some((chat, _))
                    if *chat == change.entry.chat_id
                        && change.entry.sender_id == chatcore::service::AUTO_SENDER =>
                {
                    armed.take()
                }
                _ => None,
            }
        };
        if let Some((chat, officer)) = armed {
            let claim = Transition {
                expected_status: ChatStatus::Pending,
                expected_owner: None,
                status: ChatStatus::Assigned,
                owner: Some(officer.clone()),
                entry: NewMessage {
                    id: MessageId::new(),
                    chat_id: chat,
                    sender_type: SenderType::System,
                    sender_id: officer.to_string(),
                    content: format!("{officer} took the chat"),
                    client_message_id: None,
                    created_at: change.entry.created_at,
                    event: Some(SystemEvent {
                        kind: ChatChange::Claimed,
                        officer_id: Some(officer),
                        from_officer_id: None,
                        officer_name: None,
                        from_officer_name: None,
                    }),
                    decided_on: None,
                    attachment: None,
                },
                default_capacity: None,
                only_to_eligible: false,
            };
            assert!(matches!(
                self.inner.transition(&claim).await?,
                TransitionOutcome::Applied(..)
            ));
        }
        self.inner.transition(change).await
    }

    async fn create_officer(&self, o: &OfficerRecord) -> StoreResult<()> {
        self.inner.create_officer(o).await
    }
    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        self.inner.officer(id).await
    }
    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        self.inner.officers().await
    }
    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        self.inner.get_or_create_chat(new).await
    }
    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        self.inner.chat(id).await
    }
    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.inner.pending_chats(limit).await
    }
    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>> {
        self.inner.officer_chats(officer, status, limit).await
    }
    async fn counts(&self) -> StoreResult<Counts> {
        self.inner.counts().await
    }
    async fn customer_chats(&self, c: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>> {
        self.inner.customer_chats(c, limit).await
    }
    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        self.inner
            .sent_message(chat, sender_type, sender_id, key)
            .await
    }
    async fn append_message(&self, m: &NewMessage) -> StoreResult<AppendOutcome> {
        self.inner.append_message(m).await
    }
    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<Message>> {
        self.inner.attachment(id).await
    }
    async fn blob_in_use(&self, blob: &BlobId) -> StoreResult<bool> {
        self.inner.blob_in_use(blob).await
    }
    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<MessageId>> {
        self.inner.first_reply(chat).await
    }
    async fn desk_report(&self, period: ReportPeriod) -> StoreResult<DeskReport> {
        self.inner.desk_report(period).await
    }
    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        self.inner.messages(chat, page).await
    }
    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        self.inner.last_seq(chat).await
    }
    async fn create_session(&self, s: &SessionRecord) -> StoreResult<bool> {
        self.inner.create_session(s).await
    }
    async fn session(&self, hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        self.inner.session(hash).await
    }
    async fn delete_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        self.inner.delete_session(hash).await
    }
    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>> {
        self.inner.update_officer(officer, update).await
    }
    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>> {
        self.inner.set_presence(node, officer, present, now).await
    }
    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat> {
        self.inner.node_heartbeat(node, now, stale_before).await
    }
    async fn eligible_officers(&self, cap: Option<u32>, limit: u32) -> StoreResult<Vec<Officer>> {
        self.inner.eligible_officers(cap, limit).await
    }
    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>> {
        self.inner.queue_keys(limit).await
    }
    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome> {
        self.inner.mark_read(chat, side, seq).await
    }
    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>> {
        self.inner.entries(keys).await
    }
    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        self.inner.set_officer_disabled(officer, disabled).await
    }
    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.inner.purge_expired_sessions(now).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn close(&self) -> StoreResult<()> {
        self.inner.close().await
    }
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

async fn login(service: &ChatService, customer: &str) -> Chat {
    service
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse(customer).unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap()
        .chat
}

#[tokio::test(start_paused = true)]
async fn a_round_whose_chats_were_taken_reads_the_queue_again() {
    let store = Arc::new(ClaimFirst {
        inner: MemoryStore::new(),
        armed: Mutex::new(None),
    });
    let mut config = ServiceConfig::default();
    config.assignment = Assignment::Auto;
    let service = ChatService::new(store.clone(), Arc::new(LocalBus::new()), config);
    for id in ["amy", "bob"] {
        service
            .create_officer(
                &Actor::Admin,
                NewOfficer {
                    id: oid(id),
                    password: None,
                    display_name: None,
                    capacity: Some(1),
                },
            )
            .await
            .unwrap();
    }
    // Amy is connected but away; Bob is neither (he claims by hand).
    let token = service.officer_login("amy", None).await.unwrap().token;
    let _amy_online = service.open_live_session(&token).await.unwrap();
    let amy = Actor::Officer(oid("amy"));
    service
        .set_availability(&amy, &oid("amy"), Availability::Away)
        .await
        .unwrap();
    let first = login(&service, "first").await;
    let second = login(&service, "second").await;
    assert_eq!(first.status, ChatStatus::Pending);
    assert_eq!(second.status, ChatStatus::Pending);
    // Amy's return asks for a round: it reads both chats, with room for one, the
    // oldest; Bob claims that one just before the round writes it.
    *store.armed.lock().unwrap() = Some((first.id, oid("bob")));
    let started = tokio::time::Instant::now();
    service
        .set_availability(&amy, &oid("amy"), Availability::Available)
        .await
        .unwrap();
    loop {
        let chat = service.store().chat(&second.id).await.unwrap().unwrap();
        if chat.status == ChatStatus::Assigned {
            assert_eq!(chat.assigned_officer_id, Some(oid("amy")));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.armed.lock().unwrap().is_none(), "the race was run");
    let first = service.store().chat(&first.id).await.unwrap().unwrap();
    assert_eq!(first.assigned_officer_id, Some(oid("bob")));
    // The same round's next pass gave it, not the sweep 2 s later.
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(1), "waited {waited:?}");
}
