//! Domain objects of the wire contract (Officer, Chat, Message) and the values they carry.
//! Serde shapes here are exactly the contract's camelCase JSON; nothing here talks to storage.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::blob::BlobId;
use crate::ids::{AttachmentId, ChatId, CustomerId, MessageId, OfficerId};

/// A point in time with millisecond precision, serialized as RFC 3339 in UTC
/// (`2026-11-24T11:17:19.123Z`).
///
/// Millisecond precision is what every store keeps, so a value read back equals the one
/// written.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = DateTime, example = "2026-11-24T11:17:19.120Z"))]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let now = OffsetDateTime::now_utc();
        Self((now.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// This time plus a duration (saturating).
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// This time minus a duration (saturating).
    pub fn minus(self, d: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// Parses an RFC 3339 time (any offset), to the millisecond; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        i64::try_from(dt.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
    }

    fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// RFC 3339 in UTC with exactly three fractional digits, so that the text sorts as the
/// time does (`2026-11-24T11:17:19.120Z`, never `...19.12Z`).
const WIRE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime().format(WIRE_FORMAT) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let dt = OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)?;
        Ok(Self((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }
}

/// A loan officer. Never carries a password or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "alice", "displayName": "Alice", "createdAt": "2026-11-24T11:17:19.120Z", "disabled": false, "availability": "available", "capacity": 5, "openChats": 1, "connected": true}))
)]
pub struct Officer {
    /// The officer's id.
    pub id: OfficerId,
    /// A name to show to customers and colleagues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// When the officer was created.
    pub created_at: Timestamp,
    /// True once the admin has disabled the officer: they cannot log in, and every
    /// session they had was revoked.
    #[serde(default)]
    pub disabled: bool,
    /// Whether they take chats now (`available`, the default) or not (`away`).
    #[serde(default)]
    pub availability: Availability,
    /// The most open chats they may hold at once (`null`: unlimited). Answers give the
    /// capacity in force: the officer's own, else the server's default.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// How many open (assigned) chats they hold now.
    #[serde(default)]
    pub open_chats: u32,
    /// True while they have a live connection (a WebSocket) on any node of the
    /// deployment. A node that stops without saying so stops counting once its presence
    /// expires (`ServiceConfig::presence_ttl`).
    #[serde(default)]
    pub connected: bool,
}

/// Where a chat stands: open (pending or assigned) or resolved. Match on this with a
/// wildcard arm: more states may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChatStatus {
    /// In the shared queue, waiting for an officer.
    Pending,
    /// Owned by one officer.
    Assigned,
    /// Ended. It keeps its last officer in `assigned_officer_id` (none if it was never
    /// taken); a reopen makes it assigned again.
    Resolved,
}

impl ChatStatus {
    /// The contract's spelling (`pending`, `assigned`, `resolved`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Pending => "pending",
            ChatStatus::Assigned => "assigned",
            ChatStatus::Resolved => "resolved",
        }
    }

    /// Pending or assigned: a customer has at most one open chat.
    pub fn is_open(self) -> bool {
        !matches!(self, ChatStatus::Resolved)
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ChatStatus::Pending),
            "assigned" => Some(ChatStatus::Assigned),
            "resolved" => Some(ChatStatus::Resolved),
            _ => None,
        }
    }
}

/// Whether an officer takes chats now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Availability {
    /// Taking chats (a new officer starts so).
    #[default]
    Available,
    /// Not taking chats for now.
    Away,
}

impl Availability {
    /// The contract's spelling (`available`, `away`).
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Away => "away",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(Availability::Available),
            "away" => Some(Availability::Away),
            _ => None,
        }
    }
}

/// Which of an officer's chats a list holds: the contract's `?status=open|resolved|all`
/// (default `open`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChatsFilter {
    /// The chats they own and that have not ended (`assigned`).
    #[default]
    Open,
    /// The chats that ended while theirs.
    Resolved,
    /// Both.
    All,
}

impl ChatsFilter {
    /// The contract's spelling (`open`, `resolved`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChatsFilter::Open => "open",
            ChatsFilter::Resolved => "resolved",
            ChatsFilter::All => "all",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(ChatsFilter::Open),
            "resolved" => Some(ChatsFilter::Resolved),
            "all" => Some(ChatsFilter::All),
            _ => None,
        }
    }
}

/// A customer's conversation. A customer has a history of chats, at most one of them
/// open (pending or assigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "customerId": "cust-1", "customerName": null, "assignedOfficerId": "alice", "status": "assigned", "createdAt": "2026-11-24T11:17:19.120Z", "updatedAt": "2026-11-24T11:18:02.518Z", "resolvedAt": null, "lastSeq": 3, "customerLastReadSeq": 3, "officerLastReadSeq": 2, "lastMessage": null, "queuePosition": null}))
)]
pub struct Chat {
    /// The chat's id.
    pub id: ChatId,
    /// The customer this chat belongs to.
    pub customer_id: CustomerId,
    /// The customer's name, shown to officers, when the host application vouched for one
    /// (the `name` claim of an identity token); `None` otherwise. The newest login that
    /// gave a name set it.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The officer who owns the chat; `None` while it is pending.
    pub assigned_officer_id: Option<OfficerId>,
    /// Pending, assigned or resolved.
    pub status: ChatStatus,
    /// When the chat was created (the queue is ordered by this).
    pub created_at: Timestamp,
    /// When the chat last changed: created, a message, a change of state or owner.
    pub updated_at: Timestamp,
    /// When it was resolved; `None` unless it is.
    pub resolved_at: Option<Timestamp>,
    /// The seq of its newest entry (message or system entry); 0 for none.
    pub last_seq: u64,
    /// The customer's read mark: the seq of the newest entry they have seen (0: none).
    /// It only moves forward.
    #[serde(default)]
    pub customer_last_read_seq: u64,
    /// The read mark of the chat's officers (whoever had the chat when they read), as
    /// the customer's.
    #[serde(default)]
    pub officer_last_read_seq: u64,
    /// In lists (the queue, an officer's chats, a customer's chats): the newest entry,
    /// to triage by; `None` for an empty chat, and outside lists.
    #[serde(default)]
    pub last_message: Option<LastMessage>,
    /// Its place in the queue (1: next to be taken) while it is pending; `None`
    /// otherwise. Stores leave it `None`; the service fills it from its view of the
    /// queue, which is at most about a second old.
    #[serde(default)]
    pub queue_position: Option<u32>,
}

/// A chat's newest entry as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"seq": 3, "senderType": "officer", "createdAt": "2026-11-24T11:18:02.518Z", "preview": "Hi, I am Alice."}))
)]
pub struct LastMessage {
    /// Its seq.
    pub seq: u64,
    /// Who wrote it.
    pub sender_type: SenderType,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Its first [`LastMessage::PREVIEW_CHARS`] characters (an ellipsis marks a cut).
    pub preview: String,
}

impl LastMessage {
    /// Most characters of a preview, the ellipsis included.
    pub const PREVIEW_CHARS: usize = 140;

    /// What a list shows of an attachment: a paperclip and the file's name (an
    /// attachment's message has no text of its own).
    pub const ATTACHMENT_MARK: &'static str = "📎 ";

    /// The preview of a message: its text, or for an attachment
    /// [`LastMessage::ATTACHMENT_MARK`] and the file's name; cut at
    /// [`LastMessage::PREVIEW_CHARS`].
    pub fn of(message: &Message) -> Self {
        let text = match &message.attachment {
            Some(file) => format!("{}{}", Self::ATTACHMENT_MARK, file.name),
            None => message.content.clone(),
        };
        let preview = match text.char_indices().nth(Self::PREVIEW_CHARS) {
            None => text,
            Some(_) => {
                let cut: String = text.chars().take(Self::PREVIEW_CHARS - 1).collect();
                format!("{}…", cut.trim_end())
            }
        };
        Self {
            seq: message.seq,
            sender_type: message.sender_type,
            created_at: message.created_at,
            preview,
        }
    }
}

/// What changed in a chat, in a `chat_updated` event (the contract's `change`). More
/// kinds come with the chat lifecycle, so match on this with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChatChange {
    /// The chat was created (and entered the queue, or went straight to an officer).
    Created,
    /// An officer claimed the pending chat.
    Claimed,
    /// The chat was given to an officer without a claim (a login naming them, automatic
    /// assignment).
    Assigned,
    /// Its officer put it back in the queue.
    Released,
    /// Its officer (or the admin) handed it to another officer.
    Transferred,
    /// It ended.
    Resolved,
    /// A resolved chat was opened again by an officer.
    Reopened,
}

impl ChatChange {
    /// The contract's spelling (`claimed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ChatChange::Created => "created",
            ChatChange::Claimed => "claimed",
            ChatChange::Assigned => "assigned",
            ChatChange::Released => "released",
            ChatChange::Transferred => "transferred",
            ChatChange::Resolved => "resolved",
            ChatChange::Reopened => "reopened",
        }
    }
}

/// What a system entry records: the change, and the officers it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"kind": "transferred", "officerId": "bob", "fromOfficerId": "alice", "officerName": "Bob", "fromOfficerName": "Alice"}))
)]
pub struct SystemEvent {
    /// The change.
    pub kind: ChatChange,
    /// The officer the chat went to (claimed, assigned, transferred, reopened), or who
    /// had it (released, resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_id: Option<OfficerId>,
    /// For a transfer, the officer who had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_officer_id: Option<OfficerId>,
    /// `officer_id`'s display name when the change was made (none if they had none):
    /// how the customer, who may not list officers, learns whom they talk to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_name: Option<String>,
    /// `from_officer_id`'s display name when the change was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_officer_name: Option<String>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SenderType {
    /// The chat's customer.
    Customer,
    /// The chat's assigned officer.
    Officer,
    /// The server: an entry of the chat's timeline for a change of its state.
    System,
}

impl SenderType {
    /// The contract's spelling (`customer`, `officer`).
    pub fn as_str(self) -> &'static str {
        match self {
            SenderType::Customer => "customer",
            SenderType::Officer => "officer",
            SenderType::System => "system",
        }
    }

    /// Parses the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(SenderType::Customer),
            "officer" => Some(SenderType::Officer),
            "system" => Some(SenderType::System),
            _ => None,
        }
    }
}

/// A message in a chat. `seq` is 1 for a chat's first message and grows by exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60", "chatId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "seq": 1, "senderType": "customer", "senderId": "cust-1", "content": "Hello, I need help", "createdAt": "2026-11-24T11:17:19.120Z", "clientMessageId": "m-1"}))
)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The chat it belongs to.
    pub chat_id: ChatId,
    /// Position in the chat: 1, 2, 3, ... with no gap.
    pub seq: u64,
    /// Customer or officer.
    pub sender_type: SenderType,
    /// The customer's or the officer's id, always taken from the sender's identity.
    pub sender_id: String,
    /// The text, as sent.
    pub content: String,
    /// When the message was stored.
    pub created_at: Timestamp,
    /// The sender's idempotency key, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// For a system entry, the change it records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<SystemEvent>,
    /// The file this message sends, for an attachment (its `content` is then empty).
    /// Boxed: most messages have none, and every event and frame carries a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Box<Attachment>>,
}

/// A file sent in a chat, as the message that carries it describes it. The bytes are in
/// the service's [`crate::BlobStore`] under `sha256`, and are read with
/// `ChatService::open_attachment` by whoever may read the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61", "name": "payslip.pdf", "contentType": "application/pdf", "size": 52341, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}))
)]
pub struct Attachment {
    /// The attachment's id (`GET /api/attachments/{id}`).
    pub id: AttachmentId,
    /// The file's name as the sender gave it (checked: no path, no control or
    /// bidirectional formatting characters; its extension agrees with its type).
    pub name: String,
    /// Its type as the server found it in the bytes (`image/png`, `application/pdf`,
    /// `text/plain`, ...), never only as the client declared it.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: BlobId,
}

impl Message {
    /// The length in bytes of this message's JSON, exactly as it goes on the wire (what a
    /// page's byte cap counts). Counted without building the text.
    pub fn json_len(&self) -> usize {
        let mut counter = ByteCounter(0);
        // Writing into a counter cannot fail, and these plain fields always serialize.
        let _ = serde_json::to_writer(&mut counter, self);
        counter.0
    }
}

/// An `io::Write` that only counts.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = Timestamp::from_unix_millis(1_764_000_000_123);
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2025-11-24T16:00:00.123Z\"");
        let back: Timestamp = serde_json::from_str(&s).unwrap();
        assert_eq!(back, t);
        // Always three digits, so that text order is time order.
        for (ms, text) in [
            (1_764_000_000_000, "2025-11-24T16:00:00.000Z"),
            (1_764_000_000_100, "2025-11-24T16:00:00.100Z"),
            (1_764_000_000_120, "2025-11-24T16:00:00.120Z"),
        ] {
            let t = Timestamp::from_unix_millis(ms);
            assert_eq!(t.to_string(), text);
            assert_eq!(serde_json::from_value::<Timestamp>(text.into()).unwrap(), t);
        }
    }

    #[test]
    fn a_messages_json_length_is_that_of_its_wire_form() {
        for content in ["hello", "\u{1}\u{1}", "quote \" and \\", "été 🚀"] {
            let m = Message {
                id: MessageId::new(),
                chat_id: ChatId::new(),
                seq: 7,
                sender_type: SenderType::Customer,
                sender_id: "c1".into(),
                content: content.into(),
                created_at: Timestamp::from_unix_millis(0),
                client_message_id: Some("k\u{7}".into()),
                event: None,
                attachment: None,
            };
            assert_eq!(m.json_len(), serde_json::to_vec(&m).unwrap().len());
        }
    }

    #[test]
    fn chat_serializes_in_contract_shape() {
        let chat = Chat {
            id: ChatId::new(),
            customer_id: CustomerId::parse("c1").unwrap(),
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
        };
        let v = serde_json::to_value(&chat).unwrap();
        assert_eq!(v["customerId"], "c1");
        assert!(v["customerName"].is_null());
        assert!(v["assignedOfficerId"].is_null());
        assert_eq!(v["status"], "pending");
        assert_eq!(v["createdAt"], "1970-01-01T00:00:00.000Z");
    }
}
