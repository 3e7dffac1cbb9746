//! The storage boundary: the async, object-safe [`Store`] trait that every backend
//! implements, and the plain records that cross it. A store enforces the data invariants
//! (one chat per customer, atomic claim, dense `seq`, idempotency keys); it knows nothing
//! of identities, permissions or events, which live in the service.
//!
//! `codec.rs` holds what every store encodes and decides alike (pages, seq bounds,
//! session columns, row decoding, claim outcomes), public so that backends outside this
//! crate share it; `sqlite/` and `memory.rs` are the two stores of this crate.

mod codec;
mod memory;
mod memory_outbox;
#[cfg(feature = "sqlite")]
mod sqlite;
mod webhooks;

use async_trait::async_trait;

pub use codec::{
    AttachmentColumns, ChatColumns, MalformedRow, MessageColumns, OfficerColumns, event_column,
    fill_page, read_mark_sql, seq_param,
};
pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, SQLITE_SCHEMA_VERSION, SqliteOptions, SqliteStore};
pub use webhooks::{
    ClaimedLane, DeliveryQuery, Failure, LaneClaim, PendingDelivery, Settled, Settlement,
    WebhookRecord, WebhookStore, merge_lane,
};

use crate::blob::BlobId;
use crate::ids::{AttachmentId, ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{
    Attachment, Availability, Chat, ChatStatus, Message, Officer, SenderType, SystemEvent,
    Timestamp,
};
use crate::report::{DeskReport, ReportPeriod};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique key exists already (for [`Store::create_officer`]: the officer id).
    #[error("duplicate key")]
    Duplicate,
    /// The backend cannot serve right now (disk full, read-only file, connection lost);
    /// nothing was changed and a retry may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Any other failure of the backend.
    #[error("store failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// A [`StoreError::Backend`] from a message.
    pub fn backend(msg: impl Into<String>) -> Self {
        StoreError::Backend(msg.into().into())
    }

    /// [`StoreError::Unavailable`] for a store that has been closed.
    pub fn closed() -> Self {
        StoreError::Unavailable("the store is closed".into())
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// An officer as stored, with the password hash that never leaves the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerRecord {
    /// The public part.
    pub officer: Officer,
    /// PHC-format argon2id hash, or `None` for an officer without a password.
    pub password_hash: Option<String>,
}

/// A chat to create if the customer has none yet.
#[derive(Debug, Clone)]
pub struct NewChat {
    /// Id for the new chat (ignored when the customer has a chat already).
    pub id: ChatId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The customer's name to show officers. On a new chat it is stored as given; on the
    /// customer's existing chat a `Some` replaces the stored name and `None` keeps it.
    pub customer_name: Option<String>,
    /// Owner of the new chat, or `None` to put it in the queue. The officer must exist.
    /// A new chat for an officer with no room left (their open chats at their capacity,
    /// else at `default_capacity`) is created in the queue instead, decided in the
    /// creating transaction: no officer passes capacity ([`NewChat::placed`]).
    pub assigned_officer_id: Option<OfficerId>,
    /// The capacity of officers who have none of their own (the server's default;
    /// `None`: unlimited).
    pub default_capacity: Option<u32>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A message to append; the store assigns `seq`.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Id for the new message.
    pub id: MessageId,
    /// The chat, which must exist.
    pub chat_id: ChatId,
    /// Customer or officer.
    pub sender_type: SenderType,
    /// The sender's id.
    pub sender_id: String,
    /// The text.
    pub content: String,
    /// The sender's idempotency key: unique per (chat, sender type, sender id).
    pub client_message_id: Option<String>,
    /// Time of storing.
    pub created_at: Timestamp,
    /// For a system entry, the change it records (stored as JSON).
    pub event: Option<SystemEvent>,
    /// The chat's status and owner the write was allowed on: the message is stored only
    /// if the chat still has them (else [`AppendOutcome::Stale`]). `None`: unconditional.
    pub decided_on: Option<(ChatStatus, Option<OfficerId>)>,
    /// The file the message sends (its bytes already durable in the blob store).
    pub attachment: Option<Attachment>,
}

/// What [`Store::update_officer`] changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfficerUpdate {
    /// Their own capacity (`Some(None)`: back to the server's default).
    pub capacity: Option<Option<u32>>,
    /// Whether they take chats now.
    pub availability: Option<Availability>,
}

/// A change of a chat's state with the system entry that records it, applied by
/// [`Store::transition`] only if the chat is still as the caller saw it.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The chat's status the change was decided on.
    pub expected_status: ChatStatus,
    /// The chat's owner the change was decided on.
    pub expected_owner: Option<OfficerId>,
    /// The new status.
    pub status: ChatStatus,
    /// The new owner (a resolved chat keeps its last officer).
    pub owner: Option<OfficerId>,
    /// The system entry (its `chat_id` names the chat; its `created_at` is the time of
    /// the change, also the chat's `updated_at` and, when resolved, `resolved_at`).
    pub entry: NewMessage,
    /// The capacity of an officer who has none of their own (the server's default;
    /// `None`: unlimited). A change that gives the chat to an officer who does not hold
    /// it ([`Transition::new_owner`]) is applied only while they hold fewer open chats
    /// than their capacity, counted in the same transaction
    /// ([`TransitionOutcome::AtCapacity`]). The store also records the time of the
    /// change as that officer's last assignment (see [`Store::eligible_officers`]).
    pub default_capacity: Option<u32>,
    /// Automatic assignment: the new owner must also be eligible when the change
    /// applies (enabled, available, connected on some node, as
    /// [`Store::eligible_officers`] reads them), checked in the same transaction
    /// ([`TransitionOutcome::Ineligible`]), so that a chat never goes to an officer who
    /// went away or disconnected after the round read them. Changes by hand (claims,
    /// transfers, reopens) leave it `false`.
    pub only_to_eligible: bool,
}

/// What [`Store::transition`] did.
// A return value, moved once to its caller: the applied variant's size costs nothing
// worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// Applied: the chat as it now is, and the stored entry with its seq.
    Applied(Chat, Message),
    /// The chat is no longer as the change was decided on (another change won a race);
    /// nothing changed. The chat as it now is.
    Stale(Chat),
    /// No such chat.
    NotFound,
    /// The change would give the customer a second open chat; nothing changed.
    CustomerHasOpenChat,
    /// The officer the chat would go to is at their capacity; nothing changed.
    AtCapacity,
    /// The change was for an eligible officer only ([`Transition::only_to_eligible`])
    /// and the one it would go to is disabled, away or not connected; nothing changed.
    Ineligible,
}

/// What [`Store::append_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored with the next `seq`.
    Created(Message),
    /// The same sender already used this `client_message_id` in this chat: the original,
    /// nothing stored.
    Duplicate(Message),
    /// The chat is no longer in the state the write was allowed on (resolved, handed on
    /// by another node meanwhile): nothing stored. The chat as it now is.
    Stale(Chat),
}

/// What [`Store::node_heartbeat`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// False when the node had been forgotten (another node took it for dead): it must
    /// record its presence again.
    pub known: bool,
    /// Officers who were connected only through forgotten nodes, and no longer are.
    pub disconnected: Vec<OfficerId>,
}

/// What [`Store::mark_read`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The mark moved forward: the chat as it now is.
    Moved(Chat),
    /// The mark was at or past the seq already: nothing changed.
    Unchanged(Chat),
    /// The seq is past the chat's newest entry: nothing changed.
    PastEnd(Chat),
    /// No such chat.
    NotFound,
}

/// A pending chat's place in the queue: the queue is ordered by these, ascending.
pub type QueueKey = (Timestamp, ChatId);

/// What [`Store::counts`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Officers, disabled ones included.
    pub officers: u64,
    /// Chats waiting in the queue.
    pub pending_chats: u64,
    /// Chats that have an officer.
    pub assigned_chats: u64,
}

/// A window of a chat's messages. Bounds are exclusive; the result is ascending by seq.
/// With `before`, the window is the newest `limit` messages below it (and above `after`);
/// otherwise the oldest `limit` messages above `after`.
///
/// A page also stops before the messages' JSON ([`Message::json_len`]) would pass
/// `max_bytes`, but always holds at least one message when the window has any: the
/// caller pages on from the last seq it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Only messages with a greater seq.
    pub after: Option<u64>,
    /// Only messages with a smaller seq.
    pub before: Option<u64>,
    /// At most this many (the service keeps it within 1..=1000).
    pub limit: u32,
    /// At most this many bytes of message JSON (`usize::MAX`: no cap).
    pub max_bytes: usize,
}

impl PageQuery {
    /// The messages after `after`, oldest first, with no byte cap.
    pub fn after(after: u64, limit: u32) -> Self {
        Self {
            after: Some(after),
            before: None,
            limit,
            max_bytes: usize::MAX,
        }
    }
}

/// 32-byte SHA-256 of a bearer token; stores only ever see this, never the token.
/// Serialized as lowercase hex (in the engine's own `session_revoked` notices).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl serde::Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&text, &mut hash).map_err(serde::de::Error::custom)?;
        Ok(Self(hash))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only a prefix: enough to correlate in logs, useless to an attacker.
        write!(f, "TokenHash({}..)", hex::encode(&self.0[..4]))
    }
}

/// Whom a session authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSubject {
    /// An officer.
    Officer(OfficerId),
    /// A customer, scoped to their one chat.
    Customer {
        /// The customer.
        customer_id: CustomerId,
        /// Their chat.
        chat_id: ChatId,
    },
}

/// A bearer session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Hash of the token.
    pub token_hash: TokenHash,
    /// Whom it authenticates.
    pub subject: SessionSubject,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it stops being valid.
    pub expires_at: Timestamp,
}

/// Persistent state of the engine. Implementations must be safe to share across tasks and
/// must make every write durable before returning `Ok` (an acknowledged write survives a
/// crash of the process). `chatcore::conformance` holds the tests every implementation
/// must pass. The webhooks' outbox ([`WebhookStore`]) is part of every store: its
/// events are written by [`Store::transition`], [`Store::append_message`] and
/// [`Store::get_or_create_chat`] (a new chat) in the change's own transaction.
#[async_trait]
pub trait Store: WebhookStore + Send + Sync + 'static {
    /// Inserts an officer; [`StoreError::Duplicate`] when the id exists.
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()>;

    /// One officer, with the password hash.
    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>>;

    /// All officers, ordered by id.
    async fn officers(&self) -> StoreResult<Vec<Officer>>;

    /// The customer's chat, created from `new` if there is none: `(chat, created)`.
    /// Atomic: concurrent calls for one customer yield one chat, and exactly one of them
    /// reports `created`. An existing chat is returned as it is, except that a
    /// `new.customer_name` that is `Some` replaces its name (see [`NewChat`]).
    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)>;

    /// One chat.
    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>>;

    /// Pending chats, oldest first (by `created_at`, then id), at most `limit`.
    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>>;

    /// An officer's chats with `status` (`Assigned`: their open chats; `Resolved`: the
    /// ones they ended or that ended while theirs), newest activity first (by
    /// `updated_at`, then id, descending), at most `limit`.
    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>>;

    /// How many officers, pending chats and assigned chats there are, counted in the
    /// store (one query, however many there are), for status screens.
    async fn counts(&self) -> StoreResult<Counts>;

    /// A customer's chats, newest first (at most `limit`).
    async fn customer_chats(&self, customer: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>>;

    /// Applies a change of state and appends its system entry with the chat's next seq,
    /// in one transaction, if the chat still has the expected status and owner: of
    /// concurrent changes decided on the same state, exactly one applies. Keeps at most
    /// one open chat per customer.
    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome>;

    /// The message a sender stored in `chat` with the idempotency key `key`, if any (what
    /// [`Store::append_message`] answers a repeated key with).
    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>>;

    /// Appends a message with the chat's next seq, or returns the original when the
    /// sender's `client_message_id` was used before in this chat. Concurrent appends to
    /// one chat get distinct, dense seqs.
    async fn append_message(&self, message: &NewMessage) -> StoreResult<AppendOutcome>;

    /// The message that carries the attachment `id`, if any.
    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<Message>>;

    /// Whether any message's attachment has the bytes `blob` (what a sweep of the blob
    /// store asks before it deletes one).
    async fn blob_in_use(&self, blob: &BlobId) -> StoreResult<bool>;

    /// A page of a chat's messages, ascending by seq (see [`PageQuery`]).
    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>>;

    /// The seq of the chat's newest message (0 when it has none).
    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64>;

    /// Stores a session, atomically with a check of its subject: an officer's session is
    /// stored only while the officer exists and is not disabled, so that a login racing
    /// [`Store::set_officer_disabled`] cannot leave a live session behind. Returns
    /// whether it was stored.
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<bool>;

    /// A session by token hash, expired or not (the caller checks expiry).
    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>>;

    /// Deletes a session; `true` if it existed.
    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool>;

    /// Changes an officer's settings as `update` says (fields it leaves `None` stay as
    /// they are); returns the officer as it now is, `None` when there is no such officer.
    /// Chats they hold over a lowered capacity stay theirs; they get no more until under
    /// it.
    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>>;

    /// Records whether `officer` has live connections on `node` (`present`), and that
    /// the node is alive at `now`. Returns the officer as they now are (`connected`
    /// counts every node), `None` when there is no such officer (nothing recorded).
    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>>;

    /// Marks `node` alive at `now`, and forgets every other node not seen since
    /// `stale_before`, with the presence it held (a node that died without saying so).
    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat>;

    /// The officers a chat may be given to automatically: enabled, available,
    /// connected, and holding fewer open chats than their capacity (`default_capacity`
    /// for those with none of their own; `None`: unlimited). Ordered by open chats, then
    /// by their last assignment (never assigned first, then the longest ago), then id;
    /// at most `limit`.
    async fn eligible_officers(
        &self,
        default_capacity: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Officer>>;

    /// The queue's order: each pending chat's [`QueueKey`], ascending, at most `limit`
    /// (one index range, without the chats' rows).
    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>>;

    /// Moves a side's read mark (`Customer` or `Officer`) of a chat forward to `seq`, if
    /// `seq` is above it and not past the chat's newest entry.
    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome>;

    /// The entries at the given (chat, seq) keys that exist, in no particular order: a
    /// list's newest entries read at once.
    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>>;

    /// Disables or enables an officer. Disabling deletes every session of the officer in
    /// the same transaction and returns their hashes (so that the live connections they
    /// authenticate can be closed); enabling returns none. `None` when there is no such
    /// officer.
    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>>;

    /// Deletes sessions that expired before `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    /// Succeeds when the store can serve reads and writes.
    async fn ping(&self) -> StoreResult<()>;

    /// Flushes and releases resources; later calls fail. Idempotent.
    async fn close(&self) -> StoreResult<()>;

    // Operators' reads (issue 20): the desk report and the first reply's metric.

    /// The id of the first message an officer sent in the chat (its lowest seq among
    /// officers' messages), if any.
    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<MessageId>>;

    /// The desk report of `period`, as `crate::report` defines each figure.
    async fn desk_report(&self, period: ReportPeriod) -> StoreResult<DeskReport>;
}
