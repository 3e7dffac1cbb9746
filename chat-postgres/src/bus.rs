//! [`PgBus`]: `chatcore::EventBus` across nodes over PostgreSQL LISTEN/NOTIFY. It moves
//! events between nodes and never decides anything about them.
//!
//! `publish` delivers to this node's subscribers at once (through a `LocalBus`) and
//! queues a `NOTIFY chat_events` for the other nodes, which a sender task sends on a
//! connection of its own, in publish order: whatever has queued meanwhile (up to 256)
//! in one transaction, which does not wait for the disk (`synchronous_commit = off`). A listener task holds a dedicated
//! connection (not a pooled one: a pool would drop the notifications) that has run
//! `LISTEN chat_events`; it skips notifications from its own node and republishes the
//! rest into the local bus.
//!
//! The payload stays under PostgreSQL's 8000-byte limit: an event whose JSON fits is sent
//! whole; a larger `new_message` is sent as its chat id and seq, and the receiving node
//! reads the message from the store.
//!
//! Events of one chat published by different nodes may arrive out of order; the chat
//! feed reorders them by seq. A queue "created" event that arrives after the chat was
//! claimed (the claim announced first by another node) is dropped after a look at the
//! store, so a queue view does not show a chat that already left.
//!
//! Losing events, and how clients recover: if either connection drops, the task
//! reconnects with backoff (100 ms doubling to 5 s) and events published meanwhile do
//! not cross nodes. A chat's `ChatFeed` repairs that by itself: the next message
//! arrives past a gap and the feed reads the gap from the store. The queue and officer
//! topics carry no seq, so a view of them is resynced by the client: chat-http closes a
//! lagging socket with 4008, and the client reconnects, rejoins and re-reads the queue
//! over REST (the officer console does this on every reconnect). The `sessions` topic
//! (logouts, disabled officers) is repaired by the engine: after the listener
//! reconnects, this bus publishes `SessionsMayBeStale` to its own node, and every live
//! session there checks itself against the store.
//!
//! A short-lived process (chat-cli) calls [`PgBus::flush`] before it exits, so that the
//! notifications of its writes leave before the process does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chatcore::store::{PageQuery, StoreResult};
use chatcore::{Chat, ChatId, Envelope, Event, EventBus, LocalBus, Store, Subscription, Topic};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification, Statement};

use crate::error::classify;
use crate::store::parse_url;

/// The NOTIFY channel every node listens on.
pub const CHANNEL: &str = "chat_events";

/// Largest payload sent whole; PostgreSQL refuses payloads of 8000 bytes or more.
const INLINE_LIMIT: usize = 7900;
/// Events queued for other nodes before `publish` starts dropping (and logging).
const OUTBOX: usize = 4096;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The cross-node event bus. Dropping it stops its tasks and closes its subscriptions.
pub struct PgBus {
    local: Arc<LocalBus>,
    node: String,
    outbox: mpsc::Sender<Outgoing>,
    /// Events this bus has failed to send to other nodes since it started.
    lost: Arc<AtomicU64>,
    /// Events published so far (numbers the payloads).
    published: AtomicU64,
    tasks: Vec<JoinHandle<()>>,
}

/// What the sender task is asked to do, in order.
enum Outgoing {
    /// Send this payload with `NOTIFY`.
    Notify(String),
    /// Answer once every earlier request has been handled.
    Flush(oneshot::Sender<()>),
}

impl std::fmt::Debug for PgBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBus")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl PgBus {
    /// Connects to the database at `url`. `store` is where messages too large for a
    /// notification are read back (the node's `PgStore` on the same database).
    pub async fn connect(url: &str, store: Arc<dyn Store>) -> StoreResult<Self> {
        Self::connect_with(parse_url(url)?, store, LocalBus::DEFAULT_CAPACITY).await
    }

    /// Connects with a parsed configuration; each topic keeps `capacity` events for
    /// slow local subscribers. Returns once this node is listening, so events other
    /// nodes publish after this call are delivered.
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        store: Arc<dyn Store>,
        capacity: usize,
    ) -> StoreResult<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A listener on a silently dead connection would wait forever; keepalives let
        // the kernel notice within a minute or so.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(15));
        let local = Arc::new(LocalBus::with_capacity(capacity));
        let node = uuid::Uuid::now_v7().simple().to_string();
        let listener = Listener::open(&config).await?;
        let sender = notifier(&config).await?;
        let (outbox, rx) = mpsc::channel(OUTBOX);
        let lost = Arc::new(AtomicU64::new(0));
        let tasks = vec![
            tokio::spawn(listen_loop(
                config.clone(),
                listener,
                local.clone(),
                store,
                node.clone(),
            )),
            tokio::spawn(send_loop(config, sender, rx, lost.clone())),
        ];
        Ok(Self {
            local,
            node,
            outbox,
            lost,
            published: AtomicU64::new(0),
            tasks,
        })
    }

    /// Waits, at most `timeout`, until every event published before this call has been
    /// sent to PostgreSQL or given up on. Returns how many events this bus has failed
    /// to send to other nodes since it started (0: every one was sent), or `None` when
    /// the timeout passed first.
    ///
    /// A process that publishes and then exits (chat-cli) calls this first: `publish`
    /// only queues the notification, and a queued one dies with the process.
    pub async fn flush(&self, timeout: Duration) -> Option<u64> {
        let (done, handled) = oneshot::channel();
        let wait = async {
            self.outbox.send(Outgoing::Flush(done)).await.ok()?;
            handled.await.ok()
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()?;
        Some(self.lost.load(Ordering::Relaxed))
    }

    /// This node's id, carried in every notification it sends.
    pub fn node_id(&self) -> &str {
        &self.node
    }
}

impl Drop for PgBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EventBus for PgBus {
    fn publish(&self, envelope: Arc<Envelope>) {
        let number = self.published.fetch_add(1, Ordering::Relaxed);
        let payload = encode(&self.node, number, &envelope);
        self.local.publish(envelope);
        let Some(payload) = payload else {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.outbox.try_send(Outgoing::Notify(payload)).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("event not sent to other nodes: outbox full or closed");
        }
    }

    fn subscribe(&self, topic: &Topic) -> Subscription {
        self.local.subscribe(topic)
    }
}

// ---------------------------------------------------------------------------------------
// The payload.

/// What crosses nodes: the event whole, or a reference to a stored message.
#[derive(Debug, Deserialize)]
struct Wire {
    node: String,
    topic: String,
    #[serde(default)]
    event: Option<serde_json::Value>,
    #[serde(default)]
    message_ref: Option<MessageRef>,
}

#[derive(Debug, Deserialize)]
struct MessageRef {
    chat: ChatId,
    seq: u64,
}

/// The notification for an envelope, or `None` when it cannot be sent (logged).
/// `number` (the event's place among this node's) makes every payload distinct:
/// PostgreSQL delivers a payload repeated within one transaction only once, and a batch
/// may hold the same event twice.
fn encode(node: &str, number: u64, envelope: &Envelope) -> Option<String> {
    let topic = serde_json::to_string(&envelope.topic().to_string()).ok()?;
    let event = std::str::from_utf8(envelope.json()).ok()?;
    let whole =
        format!(r#"{{"v":1,"node":"{node}","n":{number},"topic":{topic},"event":{event}}}"#);
    if whole.len() < INLINE_LIMIT {
        return Some(whole);
    }
    match envelope.message() {
        Some(m) => Some(format!(
            r#"{{"v":1,"node":"{node}","n":{number},"topic":{topic},"message_ref":{{"chat":"{}","seq":{}}}}}"#,
            m.chat_id, m.seq
        )),
        None => {
            tracing::warn!(topic = %envelope.topic(), size = whole.len(),
                "event too large for NOTIFY; not sent to other nodes");
            None
        }
    }
}

/// Turns a notification from another node into an envelope; `None` for this node's
/// own notifications and for payloads it cannot understand (logged).
async fn decode(payload: &str, node: &str, store: &dyn Store) -> Option<Arc<Envelope>> {
    let wire: Wire = match serde_json::from_str(payload) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable notification skipped");
            return None;
        }
    };
    if wire.node == node {
        return None;
    }
    let Ok(topic) = wire.topic.parse::<Topic>() else {
        tracing::warn!(
            topic = wire.topic,
            "notification for an unknown topic skipped"
        );
        return None;
    };
    if let Some(event) = wire.event {
        let Ok(event) = serde_json::from_value::<Event>(event) else {
            tracing::warn!(
                topic = wire.topic,
                "notification with an unknown event skipped"
            );
            return None;
        };
        if let Event::QueueChatCreated { chat }
        | Event::QueueChatClaimed { chat }
        | Event::ChatUpdated { chat, .. }
        | Event::ChatAssigned { chat }
        | Event::ChatUnassigned { chat } = &event
        {
            if !still_current(store, chat).await {
                return None;
            }
        }
        return Some(Envelope::new(topic, event));
    }
    let r = wire.message_ref?;
    let page = PageQuery {
        after: Some(r.seq.saturating_sub(1)),
        before: Some(r.seq.saturating_add(1)),
        limit: 1,
        max_bytes: usize::MAX,
    };
    match store.messages(&r.chat, &page).await {
        Ok(mut found) if found.len() == 1 => Some(Envelope::new(
            topic,
            Event::NewMessage {
                message: found.remove(0),
            },
        )),
        Ok(_) => {
            tracing::warn!(chat = %r.chat, seq = r.seq, "announced message not found");
            None
        }
        Err(e) => {
            // The chat's feeds read it from the store with the next message.
            tracing::warn!(error = %e, chat = %r.chat, seq = r.seq, "cannot read an announced message");
            None
        }
    }
}

/// Whether a chat's change announced by another node is still the chat's state (status
/// and owner). Events of different nodes may cross: a claim made here can be announced
/// before the other node's "created" arrives, a release there before the claim here. A
/// view that keeps each chat's last announced state must not go back to one that is
/// gone; the change that replaced it is announced in turn, so nothing is lost by
/// skipping. When the store cannot tell, the event is delivered.
async fn still_current(store: &dyn Store, announced: &Chat) -> bool {
    match store.chat(&announced.id).await {
        Ok(Some(c))
            if c.status != announced.status
                || c.assigned_officer_id != announced.assigned_officer_id =>
        {
            tracing::debug!(chat = %announced.id, "a remote change arrived after a later one; skipped");
            false
        }
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------
// Connections and tasks.

async fn connect(config: &tokio_postgres::Config, name: &str) -> StoreResult<Client> {
    let mut config = config.clone();
    config.application_name(name);
    let (client, connection) = config.connect(NoTls).await.map_err(classify)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "NOTIFY connection ended");
        }
    });
    Ok(client)
}

/// A connection that has run `LISTEN`, with the notifications it receives.
struct Listener {
    /// Kept so that the connection stays open; dropping it closes the connection.
    _client: Client,
    notifications: mpsc::Receiver<Notification>,
}

impl Listener {
    async fn open(config: &tokio_postgres::Config) -> StoreResult<Self> {
        let mut config = config.clone();
        config.application_name("chat-postgres-listen");
        let (client, mut connection) = config.connect(NoTls).await.map_err(classify)?;
        let (tx, notifications) = mpsc::channel(1024);
        // The connection must be polled for notifications to arrive; this task ends,
        // closing the channel, when the connection is lost.
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(AsyncMessage::Notice(notice))) => {
                        tracing::debug!(%notice, "PostgreSQL notice on the listener");
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "listener connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(classify)?;
        Ok(Self {
            _client: client,
            notifications,
        })
    }
}

async fn listen_loop(
    config: tokio_postgres::Config,
    first: Listener,
    local: Arc<LocalBus>,
    store: Arc<dyn Store>,
    node: String,
) {
    let mut listener = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut current = match listener.take() {
            Some(l) => l,
            None => match Listener::open(&config).await {
                Ok(l) => {
                    tracing::info!(
                        "listener reconnected; events of other nodes published meanwhile \
                         were missed (chat feeds repair from the store, live sessions \
                         re-check)"
                    );
                    // A logout or a disable on another node may be among them.
                    local.publish(Envelope::new(Topic::Sessions, Event::SessionsMayBeStale));
                    backoff = MIN_BACKOFF;
                    l
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "listener cannot reconnect yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        while let Some(n) = current.notifications.recv().await {
            if let Some(envelope) = decode(n.payload(), &node, store.as_ref()).await {
                local.publish(envelope);
            }
        }
        tracing::warn!("listener connection lost; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

/// The sending connection with its prepared statement, which sends a batch of payloads
/// (in order) in one transaction.
type Notifier = (Client, Statement);

/// Most notifications sent in one transaction.
const BATCH: usize = 256;

async fn notifier(config: &tokio_postgres::Config) -> StoreResult<Notifier> {
    let client = connect(config, "chat-postgres-notify").await?;
    // A transaction that only notifies still writes a commit record, and with the
    // default `synchronous_commit` waits for its flush to disk while holding the
    // server-wide lock every notifying commit takes: one disk flush per event, one event
    // at a time. Nothing in it needs to survive a crash (the events are gone with the
    // listeners' connections anyway), so it does not wait for the flush.
    client
        .batch_execute("SET synchronous_commit = off")
        .await
        .map_err(classify)?;
    // Volatile output is computed after ORDER BY: the notifications go in array order.
    let statement = client
        .prepare(
            "SELECT pg_notify($1, payload) \
             FROM unnest($2::text[]) WITH ORDINALITY AS batch(payload, n) ORDER BY n",
        )
        .await
        .map_err(classify)?;
    Ok((client, statement))
}

async fn send_loop(
    config: tokio_postgres::Config,
    first: Notifier,
    mut outbox: mpsc::Receiver<Outgoing>,
    lost: Arc<AtomicU64>,
) {
    let mut current = Some(first);
    let mut retry_at = tokio::time::Instant::now();
    let mut backoff = MIN_BACKOFF;
    let mut batch: Vec<String> = Vec::with_capacity(BATCH);
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match outbox.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        match request {
            Outgoing::Notify(payload) => batch.push(payload),
            Outgoing::Flush(done) => {
                // Requests are handled in order: everything before this one is done.
                let _ = done.send(());
                continue;
            }
        }
        // What else waits goes in the same transaction (up to a flush, which must
        // follow the sending of everything before it).
        while batch.len() < BATCH {
            match outbox.try_recv() {
                Ok(Outgoing::Notify(payload)) => batch.push(payload),
                Ok(flush) => {
                    next = Some(flush);
                    break;
                }
                Err(_) => break,
            }
        }
        // One retry on a fresh connection covers a connection that died while idle.
        let mut sent = false;
        for _ in 0..2 {
            if current.as_ref().is_none_or(|(c, _)| c.is_closed()) {
                current = None;
                if tokio::time::Instant::now() < retry_at {
                    break;
                }
                match notifier(&config).await {
                    Ok(n) => {
                        backoff = MIN_BACKOFF;
                        current = Some(n);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "NOTIFY connection cannot reconnect yet");
                        retry_at = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        break;
                    }
                }
            }
            let Some((client, statement)) = &current else {
                break;
            };
            match client.execute(statement, &[&CHANNEL, &batch]).await {
                Ok(_) => {
                    chatcore::metrics::notify_batch(batch.len());
                    sent = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "NOTIFY failed");
                    current = None;
                }
            }
        }
        if !sent {
            lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                events = batch.len(),
                "events not sent to other nodes: no connection to PostgreSQL"
            );
        }
        batch.clear();
    }
}
