//! The event bus: topics (`chat:<id>`, `officers:all`, `officer:<id>`, and the engine's
//! own `sessions`), the events of the contract, and [`LocalBus`], the in-process
//! implementation. The [`EventBus`] trait is the seam where a cross-node bus
//! (`chat-postgres`'s PostgreSQL LISTEN/NOTIFY) plugs in.
//!
//! Memory is bounded: each topic keeps a ring of the last [`LocalBus::with_capacity`]
//! events, and a topic with no subscriber holds nothing. A subscriber that falls more
//! than that far behind is told so ([`RecvError::Lagged`]) and must resync from the
//! store; it is never silently starved and never makes the publisher wait.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ids::{ChatId, OfficerId};
use crate::model::{Chat, ChatChange, Message, Officer, SenderType};
use crate::store::TokenHash;

/// Where an event is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `chat:<id>`: the messages of one chat.
    Chat(ChatId),
    /// `officers:all`: the shared queue (chats created and claimed).
    Officers,
    /// `officer:<id>`: events for one officer (chats assigned to them).
    Officer(OfficerId),
    /// `sessions`: the engine's own notices that sessions ended early (logout, an
    /// officer disabled), so that every node closes the connections they authenticate.
    /// Never forwarded to a client.
    Sessions,
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Chat(id) => write!(f, "chat:{id}"),
            Topic::Officers => f.write_str("officers:all"),
            Topic::Officer(id) => write!(f, "officer:{id}"),
            Topic::Sessions => f.write_str("sessions"),
        }
    }
}

/// The contract's spelling of a topic (what [`fmt::Display`] writes), read back: for a bus
/// that carries topics between processes.
impl std::str::FromStr for Topic {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || format!("{s:?} is not a topic");
        match s {
            "officers:all" => Ok(Topic::Officers),
            "sessions" => Ok(Topic::Sessions),
            _ => {
                if let Some(id) = s.strip_prefix("chat:") {
                    ChatId::parse(id).map(Topic::Chat).map_err(|_| unknown())
                } else if let Some(id) = s.strip_prefix("officer:") {
                    OfficerId::parse(id)
                        .map(Topic::Officer)
                        .map_err(|_| unknown())
                } else {
                    Err(unknown())
                }
            }
        }
    }
}

/// An event of the contract. Serializes to exactly the WebSocket frame the contract
/// specifies (`{"type": "new_message", "message": {...}}` and so on), and reads back from
/// it (a bus between processes, a client); fields it does not know are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A message was stored in a chat (topic `chat:<id>`).
    NewMessage {
        /// The stored message.
        message: Message,
    },
    /// A new pending chat entered the queue (topic `officers:all`).
    QueueChatCreated {
        /// The chat.
        chat: Chat,
    },
    /// A pending chat was claimed and left the queue (topic `officers:all`).
    QueueChatClaimed {
        /// The chat, now assigned.
        chat: Chat,
    },
    /// A chat now belongs to an officer (topic `officer:<id>`).
    ChatAssigned {
        /// The chat.
        chat: Chat,
    },
    /// A chat is no longer an officer's: released to the queue or transferred to
    /// another officer (topic `officer:<id>` of the former owner).
    ChatUnassigned {
        /// The chat as it now is.
        chat: Chat,
    },
    /// A chat's state changed (topic `chat:<id>`). Whoever follows the chat learns of
    /// it, and a feed re-checks its reader's right to the chat before anything else of
    /// the chat reaches them.
    ChatUpdated {
        /// The chat as it now is.
        chat: Chat,
        /// What happened.
        change: ChatChange,
    },
    /// A pending chat's place in the queue changed (1: next to be taken). Not published
    /// on the bus: each node's chat feeds derive it from the node's view of the queue,
    /// at most once a second per chat.
    QueuePosition {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: ChatId,
        /// Its place.
        position: u32,
    },
    /// A side of the chat moved its read mark (topic `chat:<id>`).
    Read {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: ChatId,
        /// `customer` or `officer`.
        #[serde(rename = "readerType")]
        reader_type: SenderType,
        /// Who read.
        #[serde(rename = "readerId")]
        reader_id: String,
        /// Their mark now.
        seq: u64,
    },
    /// A side of the chat is typing (topic `chat:<id>`; stored nowhere). A receiver
    /// shows it for `expires_in_ms`, or until that sender's next message.
    Typing {
        /// The chat.
        #[serde(rename = "chatId")]
        chat_id: ChatId,
        /// `customer` or `officer`.
        #[serde(rename = "senderType")]
        sender_type: SenderType,
        /// Who.
        #[serde(rename = "senderId")]
        sender_id: String,
        /// How long to show it.
        #[serde(rename = "expiresInMs")]
        expires_in_ms: u64,
    },
    /// An officer changed: availability, capacity, connection or load (topic
    /// `officers:all`).
    OfficerUpdated {
        /// The officer as they now are.
        officer: Officer,
    },
    /// A session ended before its expiry (topic `sessions`; the engine's own, never
    /// sent to a client): connections it authenticates must close.
    SessionRevoked {
        /// The hash of the session's token.
        #[serde(rename = "tokenHash")]
        token_hash: TokenHash,
    },
    /// Every session of an officer ended: the admin disabled them (topic `sessions`; the
    /// engine's own, never sent to a client). One notice however many sessions they had.
    OfficerSessionsRevoked {
        /// The officer.
        #[serde(rename = "officerId")]
        officer_id: OfficerId,
    },
    /// Notices of this topic may have been lost on the way between nodes (a bus that
    /// reconnected): every live session checks itself against the store. Published by a
    /// bus to its own node only (topic `sessions`; never sent to a client).
    SessionsMayBeStale,
}

impl Event {
    /// The event's `type`, as its JSON spells it (`new_message`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::NewMessage { .. } => "new_message",
            Event::QueueChatCreated { .. } => "queue_chat_created",
            Event::QueueChatClaimed { .. } => "queue_chat_claimed",
            Event::ChatAssigned { .. } => "chat_assigned",
            Event::ChatUpdated { .. } => "chat_updated",
            Event::ChatUnassigned { .. } => "chat_unassigned",
            Event::OfficerUpdated { .. } => "officer_updated",
            Event::QueuePosition { .. } => "queue_position",
            Event::Read { .. } => "read",
            Event::Typing { .. } => "typing",
            Event::SessionRevoked { .. } => "session_revoked",
            Event::OfficerSessionsRevoked { .. } => "officer_sessions_revoked",
            Event::SessionsMayBeStale => "sessions_may_be_stale",
        }
    }
}

/// One published event with its topic, shared by every subscriber. Its JSON is produced
/// at most once, however many subscribers send it on.
#[derive(Debug)]
pub struct Envelope {
    topic: Topic,
    event: Event,
    json: OnceLock<Bytes>,
}

impl Envelope {
    /// Wraps an event for publishing.
    pub fn new(topic: Topic, event: Event) -> Arc<Self> {
        Arc::new(Self {
            topic,
            event,
            json: OnceLock::new(),
        })
    }

    /// The topic it was published to.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The message, for a `new_message` event.
    pub fn message(&self) -> Option<&Message> {
        match &self.event {
            Event::NewMessage { message } => Some(message),
            _ => None,
        }
    }

    /// The event as a JSON text frame (valid UTF-8), serialized on first use only.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            // Serializing these plain structs cannot fail; an empty object keeps the
            // frame well-formed if it ever did.
            serde_json::to_vec(&self.event)
                .map(Bytes::from)
                .unwrap_or_else(|_| Bytes::from_static(b"{}"))
        })
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and this many events were dropped for it; it should
    /// resync from the store (the events after this are still delivered).
    #[error("subscriber lagged behind by {0} events")]
    Lagged(u64),
    /// The bus is gone.
    #[error("event bus closed")]
    Closed,
}

/// A live subscription to one topic. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Envelope>>,
}

impl Subscription {
    /// A subscription fed by a broadcast channel; for [`EventBus`] implementations.
    pub fn from_receiver(rx: broadcast::Receiver<Arc<Envelope>>) -> Self {
        Self { rx }
    }

    /// The next event, in publish order.
    pub async fn recv(&mut self) -> Result<Arc<Envelope>, RecvError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<Arc<Envelope>, RecvError>> {
        match self.rx.try_recv() {
            Ok(e) => Some(Ok(e)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        }
    }
}

/// Publish/subscribe by topic. The service publishes only after the change is committed;
/// an implementation must deliver one topic's events to each subscriber in publish order.
pub trait EventBus: Send + Sync + 'static {
    /// Delivers the event to the current subscribers of its topic. Never blocks, never
    /// fails the caller: a bus that cannot deliver drops and logs.
    fn publish(&self, envelope: Arc<Envelope>);

    /// Subscribes to a topic; events published after this call are delivered.
    fn subscribe(&self, topic: &Topic) -> Subscription;
}

/// The in-process [`EventBus`]: one bounded broadcast ring per topic that has subscribers.
///
/// `chat:<id>` topics get a much smaller ring than the queue: there is one per watched
/// chat, and a chat subscriber that falls behind loses nothing (its [`crate::ChatFeed`]
/// reads the gap from the store), while a lagging queue subscriber must resync the whole
/// queue. `officer:<id>` topics (one per officer online, rare events) sit in between.
pub struct LocalBus {
    capacity: usize,
    chat_capacity: usize,
    officer_capacity: usize,
    topics: Mutex<Topics>,
}

struct Topics {
    map: HashMap<Topic, broadcast::Sender<Arc<Envelope>>>,
    /// Size at which `subscribe` next sweeps out topics whose subscribers all left (a
    /// topic nobody publishes to again would otherwise stay). Doubling keeps it O(1)
    /// amortized.
    sweep_at: usize,
}

impl LocalBus {
    /// Default number of events a topic other than a chat's keeps for slow subscribers.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// Default number of events a `chat:<id>` topic keeps. The ring is allocated when a
    /// chat gets its first subscriber, so this is a cost per watched chat (about 40 bytes
    /// a slot, plus the events it still holds): with a customer alone in their chat it is
    /// paid per socket. A chat feed that falls further behind reads the gap from the
    /// store ([`crate::ChatFeed`]), so a small ring loses nothing; it only has to cover
    /// the events published while a subscriber's task waits for its turn.
    pub const DEFAULT_CHAT_CAPACITY: usize = 8;

    /// Default number of events an `officer:<id>` topic keeps: one ring per officer
    /// online, for the rare events addressed to one officer.
    pub const DEFAULT_OFFICER_CAPACITY: usize = 64;

    /// A bus with the default capacities.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A bus whose topics keep `capacity` events each for subscribers that fall behind
    /// (chat topics keep at most [`Self::DEFAULT_CHAT_CAPACITY`], see
    /// [`Self::chat_capacity`]; officer topics at most
    /// [`Self::DEFAULT_OFFICER_CAPACITY`]).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            chat_capacity: capacity.min(Self::DEFAULT_CHAT_CAPACITY),
            officer_capacity: capacity.min(Self::DEFAULT_OFFICER_CAPACITY),
            topics: Mutex::new(Topics {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// Sets how many events each `chat:<id>` topic keeps.
    pub fn chat_capacity(mut self, capacity: usize) -> Self {
        self.chat_capacity = capacity.max(1);
        self
    }

    /// Number of topics that currently hold a channel (for tests and metrics).
    pub fn topic_count(&self) -> usize {
        self.topics.lock().map(|t| t.map.len()).unwrap_or(0)
    }
}

const MIN_SWEEP: usize = 64;

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus for LocalBus {
    fn publish(&self, envelope: Arc<Envelope>) {
        let Ok(mut topics) = self.topics.lock() else {
            tracing::error!("event bus lock poisoned; event dropped");
            return;
        };
        let topic = envelope.topic().clone();
        if let Some(sender) = topics.map.get(&topic) {
            if sender.send(envelope).is_err() {
                // Nobody listens any more: free the topic's ring.
                topics.map.remove(&topic);
            }
        }
    }

    fn subscribe(&self, topic: &Topic) -> Subscription {
        let mut topics = match self.topics.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        if topics.map.len() >= topics.sweep_at {
            topics.map.retain(|_, sender| sender.receiver_count() > 0);
            topics.sweep_at = (topics.map.len() * 2).max(MIN_SWEEP);
        }
        let capacity = match topic {
            Topic::Chat(_) => self.chat_capacity,
            Topic::Officer(_) => self.officer_capacity,
            Topic::Officers | Topic::Sessions => self.capacity,
        };
        let rx = topics
            .map
            .entry(topic.clone())
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe();
        Subscription::from_receiver(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use crate::model::{ChatStatus, Timestamp};

    fn chat() -> Chat {
        Chat {
            id: ChatId::new(),
            customer_id: CustomerId::parse("c").unwrap(),
            customer_name: None,
            assigned_officer_id: None,
            status: ChatStatus::Pending,
            created_at: Timestamp::from_unix_millis(0),
            updated_at: Timestamp::from_unix_millis(0),
            resolved_at: None,
            last_seq: 0,
            customer_last_read_seq: 0,
            officer_last_read_seq: 0,
            queue_position: None,
            last_message: None,
        }
    }

    #[tokio::test]
    async fn delivers_in_order_to_every_subscriber_of_the_topic_only() {
        let bus = LocalBus::new();
        let mut a = bus.subscribe(&Topic::Officers);
        let mut b = bus.subscribe(&Topic::Officers);
        let mut other = bus.subscribe(&Topic::Officer(OfficerId::parse("x").unwrap()));
        let chats: Vec<Chat> = (0..3).map(|_| chat()).collect();
        for c in &chats {
            bus.publish(Envelope::new(
                Topic::Officers,
                Event::QueueChatCreated { chat: c.clone() },
            ));
        }
        for sub in [&mut a, &mut b] {
            for c in &chats {
                let got = sub.recv().await.unwrap();
                assert_eq!(got.event(), &Event::QueueChatCreated { chat: c.clone() });
            }
        }
        assert!(other.try_recv().is_none());
    }

    #[tokio::test]
    async fn chat_and_officer_topics_keep_smaller_rings_than_the_queue() {
        let bus = LocalBus::new();
        let id = ChatId::new();
        let mut chat_sub = bus.subscribe(&Topic::Chat(id));
        let mut queue_sub = bus.subscribe(&Topic::Officers);
        let n = LocalBus::DEFAULT_CHAT_CAPACITY + 10;
        for _ in 0..n {
            bus.publish(Envelope::new(
                Topic::Officers,
                Event::QueueChatCreated { chat: chat() },
            ));
            bus.publish(Envelope::new(
                Topic::Chat(id),
                Event::QueueChatCreated { chat: chat() },
            ));
        }
        assert_eq!(chat_sub.recv().await.unwrap_err(), RecvError::Lagged(10));
        for _ in 0..n {
            assert!(
                queue_sub.recv().await.is_ok(),
                "the queue ring holds them all"
            );
        }
        let officer = Topic::Officer(OfficerId::parse("o").unwrap());
        let mut officer_sub = bus.subscribe(&officer);
        for _ in 0..LocalBus::DEFAULT_OFFICER_CAPACITY + 5 {
            bus.publish(Envelope::new(
                officer.clone(),
                Event::ChatAssigned { chat: chat() },
            ));
        }
        assert_eq!(officer_sub.recv().await.unwrap_err(), RecvError::Lagged(5));
        let bus = LocalBus::new().chat_capacity(n);
        let mut chat_sub = bus.subscribe(&Topic::Chat(id));
        for _ in 0..n {
            bus.publish(Envelope::new(
                Topic::Chat(id),
                Event::QueueChatCreated { chat: chat() },
            ));
        }
        for _ in 0..n {
            assert!(
                chat_sub.recv().await.is_ok(),
                "a configured chat ring holds them"
            );
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_and_memory_stays_bounded() {
        let bus = LocalBus::with_capacity(4);
        let mut slow = bus.subscribe(&Topic::Officers);
        for _ in 0..10 {
            bus.publish(Envelope::new(
                Topic::Officers,
                Event::QueueChatCreated { chat: chat() },
            ));
        }
        assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged(6));
        // The newest four are still there.
        for _ in 0..4 {
            assert!(slow.recv().await.is_ok());
        }
    }

    #[tokio::test]
    async fn topics_without_subscribers_are_dropped() {
        let bus = LocalBus::new();
        let sub = bus.subscribe(&Topic::Officers);
        assert_eq!(bus.topic_count(), 1);
        drop(sub);
        bus.publish(Envelope::new(
            Topic::Officers,
            Event::QueueChatCreated { chat: chat() },
        ));
        assert_eq!(bus.topic_count(), 0);
    }

    #[tokio::test]
    async fn abandoned_topics_are_swept_on_later_subscribes() {
        let bus = LocalBus::new();
        for _ in 0..1000 {
            drop(bus.subscribe(&Topic::Chat(ChatId::new())));
        }
        assert!(bus.topic_count() <= 2 * MIN_SWEEP, "{}", bus.topic_count());
    }

    #[test]
    fn topics_and_events_read_back_what_they_write() {
        let officer = OfficerId::parse("amy").unwrap();
        for topic in [
            Topic::Chat(ChatId::new()),
            Topic::Officers,
            Topic::Officer(officer.clone()),
            Topic::Sessions,
        ] {
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
        for bad in ["chat:nope", "officer:", "officers", ""] {
            assert!(bad.parse::<Topic>().is_err(), "{bad}");
        }
        let c = chat();
        for event in [
            Event::QueueChatCreated { chat: c.clone() },
            Event::QueueChatClaimed { chat: c.clone() },
            Event::ChatAssigned { chat: c.clone() },
            Event::ChatUpdated {
                chat: c,
                change: ChatChange::Claimed,
            },
            Event::SessionRevoked {
                token_hash: TokenHash([7; 32]),
            },
            Event::OfficerSessionsRevoked {
                officer_id: officer.clone(),
            },
            Event::SessionsMayBeStale,
        ] {
            let json = Envelope::new(Topic::Sessions, event.clone()).json().clone();
            assert_eq!(serde_json::from_slice::<Event>(&json).unwrap(), event);
        }
        // A field it does not know is ignored; a type it does not know is refused.
        let v = serde_json::json!({ "type": "sessions_may_be_stale", "extra": 1 });
        assert_eq!(
            serde_json::from_value::<Event>(v).unwrap(),
            Event::SessionsMayBeStale
        );
        assert!(serde_json::from_value::<Event>(serde_json::json!({ "type": "nope" })).is_err());
    }

    #[test]
    fn envelope_json_is_the_contract_frame_and_is_made_once() {
        let c = chat();
        let env = Envelope::new(Topic::Officers, Event::QueueChatClaimed { chat: c.clone() });
        let first = env.json().clone();
        let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(v["type"], "queue_chat_claimed");
        assert_eq!(v["chat"]["id"], c.id.to_string());
        // Same allocation the second time: serialized once, shared.
        assert_eq!(env.json().as_ptr(), first.as_ptr());
    }
}
