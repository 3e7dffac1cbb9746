//! What every store encodes and decides alike, whatever holds its data: a page cut at its
//! byte cap, a seq bound as a signed column value, a session's subject as columns and
//! back, a row's columns checked into the engine's types, the record a write stores, and
//! the outcome of a claim that changed nothing. Public for `Store` implementations
//! (chat-postgres uses it as the stores in this crate do); it must not touch a driver or a
//! connection, nor decide a rule of the chat.

use super::{
    NewChat, NewMessage, OfficerRecord, SessionSubject, StoreError, TokenHash, Transition,
};
use crate::blob::BlobId;
use crate::ids::{AttachmentId, ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{
    Attachment, Availability, Chat, ChatStatus, Message, Officer, SenderType, SystemEvent,
    Timestamp,
};

/// A stored value that does not decode into the engine's types; names the table (and
/// column) it was read from. Becomes a [`StoreError::Backend`] ("malformed row: ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedRow(pub &'static str);

impl std::fmt::Display for MalformedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed row: {}", self.0)
    }
}

impl std::error::Error for MalformedRow {}

impl From<MalformedRow> for StoreError {
    fn from(e: MalformedRow) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Collects a page from rows in the order they are read (ascending for an `after`
/// window, descending for a `before` one), stopping before the JSON of the messages
/// would pass `max_bytes`; the first message is always taken. For store implementations,
/// so that every store cuts pages alike.
pub fn fill_page<E>(
    rows: impl IntoIterator<Item = Result<Message, E>>,
    max_bytes: usize,
) -> Result<Vec<Message>, E> {
    let mut page = Vec::new();
    let mut used = 0usize;
    for row in rows {
        let message = row?;
        used = used.saturating_add(message.json_len());
        if used > max_bytes && !page.is_empty() {
            break;
        }
        page.push(message);
    }
    Ok(page)
}

/// A seq bound as a signed 64-bit column value (SQLite `INTEGER`, PostgreSQL `BIGINT`):
/// `v`, or `default` when there is no bound. Values past `i64::MAX` saturate (no seq is
/// that large).
pub fn seq_param(v: Option<u64>, default: i64) -> i64 {
    v.map_or(default, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

impl SessionSubject {
    /// The subject as the `(role, subject, chat_id)` columns of a sessions table:
    /// `("officer", officer id, None)` or `("customer", customer id, Some(chat id))`.
    pub fn to_columns(&self) -> (&'static str, String, Option<String>) {
        match self {
            SessionSubject::Officer(id) => ("officer", id.to_string(), None),
            SessionSubject::Customer {
                customer_id,
                chat_id,
            } => (
                "customer",
                customer_id.to_string(),
                Some(chat_id.to_string()),
            ),
        }
    }

    /// The subject from the columns [`SessionSubject::to_columns`] writes. An unknown
    /// role, a customer without a chat or an id that does not parse is
    /// `MalformedRow("sessions")`.
    pub fn from_columns(
        role: &str,
        subject: String,
        chat_id: Option<String>,
    ) -> Result<Self, MalformedRow> {
        let bad = || MalformedRow("sessions");
        Ok(match (role, chat_id) {
            ("officer", _) => {
                SessionSubject::Officer(OfficerId::parse(subject).map_err(|_| bad())?)
            }
            ("customer", Some(chat)) => SessionSubject::Customer {
                customer_id: CustomerId::parse(subject).map_err(|_| bad())?,
                chat_id: ChatId::parse(&chat).map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        })
    }
}

impl TokenHash {
    /// A token hash read back from a column; `MalformedRow("sessions.token_hash")` unless
    /// it is 32 bytes.
    pub fn from_column(bytes: Vec<u8>) -> Result<Self, MalformedRow> {
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MalformedRow("sessions.token_hash"))?;
        Ok(TokenHash(hash))
    }
}

impl Transition {
    /// The officer the change gives the chat to, when they do not hold it already: the
    /// one whose capacity the change must respect.
    pub fn new_owner(&self) -> Option<&OfficerId> {
        let keeps =
            self.expected_status == ChatStatus::Assigned && self.expected_owner == self.owner;
        match (&self.owner, self.status) {
            (Some(owner), ChatStatus::Assigned) if !keeps => Some(owner),
            _ => None,
        }
    }

    /// Whether an officer holding `open_chats` open chats, with their own capacity
    /// `capacity`, has room for one more under this change's rule.
    pub fn has_room(&self, capacity: Option<u32>, open_chats: u64) -> bool {
        capacity
            .or(self.default_capacity)
            .is_none_or(|cap| open_chats < u64::from(cap))
    }

    /// Whether this change may go to an officer in this state: any officer, unless it is
    /// for an eligible one only ([`Transition::only_to_eligible`]).
    pub fn may_go_to(&self, officer: &crate::model::Officer) -> bool {
        !self.only_to_eligible
            || (!officer.disabled
                && officer.availability == crate::model::Availability::Available
                && officer.connected)
    }
}

impl NewChat {
    /// The chat to create when its officer holds `open_chats` open chats and has their
    /// own capacity `capacity`: theirs when they have room, else in the queue (the
    /// officer taken off). Stores call it in the creating transaction, with the
    /// officer's load read (and, on a shared database, locked) there.
    #[must_use]
    pub fn placed(mut self, capacity: Option<u32>, open_chats: u64) -> Self {
        let room = capacity
            .or(self.default_capacity)
            .is_none_or(|cap| open_chats < u64::from(cap));
        if !room {
            self.assigned_officer_id = None;
        }
        self
    }

    /// The status a new chat is stored with: assigned when it is created with an
    /// officer, else pending (in the queue).
    pub fn status(&self) -> ChatStatus {
        if self.assigned_officer_id.is_some() {
            ChatStatus::Assigned
        } else {
            ChatStatus::Pending
        }
    }
}

impl NewMessage {
    /// The message as stored with the `seq` the store gave it.
    pub fn stored(self, seq: u64) -> Message {
        Message {
            id: self.id,
            chat_id: self.chat_id,
            seq,
            sender_type: self.sender_type,
            sender_id: self.sender_id,
            content: self.content,
            created_at: self.created_at,
            client_message_id: self.client_message_id,
            event: self.event,
            attachment: self.attachment.map(Box::new),
        }
    }
}

/// A system entry's event as its column holds it (JSON), `None` for a message.
pub fn event_column(event: Option<&SystemEvent>) -> Option<String> {
    event.map(|e| serde_json::to_string(e).unwrap_or_default())
}

/// A chat's columns as a store reads them, before they are checked. The store reads the
/// values with its driver; [`ChatColumns::decode`] decides what they mean.
#[derive(Debug, Clone)]
pub struct ChatColumns {
    /// `chats.id`, a UUID.
    pub id: String,
    /// `chats.customer_id`.
    pub customer_id: String,
    /// `chats.assigned_officer_id`.
    pub assigned_officer_id: Option<String>,
    /// `chats.status`, as [`ChatStatus::as_str`] writes it.
    pub status: String,
    /// `chats.created_at`, Unix milliseconds.
    pub created_at: i64,
    /// `chats.customer_name`.
    pub customer_name: Option<String>,
    /// `chats.updated_at`, Unix milliseconds.
    pub updated_at: i64,
    /// `chats.resolved_at`, Unix milliseconds.
    pub resolved_at: Option<i64>,
    /// `chats.last_seq`.
    pub last_seq: i64,
    /// `chats.customer_last_read_seq`.
    pub customer_last_read_seq: i64,
    /// `chats.officer_last_read_seq`.
    pub officer_last_read_seq: i64,
}

impl ChatColumns {
    /// The chat; a value that does not parse is `MalformedRow` naming its column.
    pub fn decode(self) -> Result<Chat, MalformedRow> {
        Ok(Chat {
            id: ChatId::parse(&self.id).map_err(|_| MalformedRow("chats.id"))?,
            customer_id: CustomerId::parse(self.customer_id)
                .map_err(|_| MalformedRow("chats.customer_id"))?,
            assigned_officer_id: self
                .assigned_officer_id
                .map(OfficerId::parse)
                .transpose()
                .map_err(|_| MalformedRow("chats.assigned_officer_id"))?,
            status: ChatStatus::parse(&self.status).ok_or(MalformedRow("chats.status"))?,
            created_at: Timestamp::from_unix_millis(self.created_at),
            customer_name: self.customer_name,
            updated_at: Timestamp::from_unix_millis(self.updated_at),
            resolved_at: self.resolved_at.map(Timestamp::from_unix_millis),
            last_seq: u64::try_from(self.last_seq).map_err(|_| MalformedRow("chats.last_seq"))?,
            customer_last_read_seq: u64::try_from(self.customer_last_read_seq)
                .map_err(|_| MalformedRow("chats.customer_last_read_seq"))?,
            officer_last_read_seq: u64::try_from(self.officer_last_read_seq)
                .map_err(|_| MalformedRow("chats.officer_last_read_seq"))?,
            queue_position: None,
            last_message: None,
        })
    }
}

/// A message's columns as a store reads them, before they are checked.
#[derive(Debug, Clone)]
pub struct MessageColumns {
    /// `messages.id`, a UUID.
    pub id: String,
    /// `messages.chat_id`, a UUID.
    pub chat_id: String,
    /// `messages.seq`, converted by the store from its signed column.
    pub seq: u64,
    /// `messages.sender_type`, as [`SenderType::as_str`] writes it.
    pub sender_type: String,
    /// `messages.sender_id`.
    pub sender_id: String,
    /// `messages.content`.
    pub content: String,
    /// `messages.created_at`, Unix milliseconds.
    pub created_at: i64,
    /// `messages.client_message_id`.
    pub client_message_id: Option<String>,
    /// `messages.event`, JSON.
    pub event: Option<String>,
    /// The attachment's columns, all set or all `NULL` (see [`AttachmentColumns`]).
    pub attachment: AttachmentColumns,
}

/// A message's attachment as columns of `messages` (`attachment_id`,
/// `attachment_name`, `attachment_type`, `attachment_size`, `attachment_sha256`): all
/// `NULL` for a message without one.
#[derive(Debug, Clone, Default)]
pub struct AttachmentColumns {
    /// `messages.attachment_id`, a UUID.
    pub id: Option<String>,
    /// `messages.attachment_name`.
    pub name: Option<String>,
    /// `messages.attachment_type`.
    pub content_type: Option<String>,
    /// `messages.attachment_size`.
    pub size: Option<i64>,
    /// `messages.attachment_sha256`, 64 hex digits.
    pub sha256: Option<String>,
}

impl AttachmentColumns {
    /// The columns a message's attachment is stored as.
    pub fn of(attachment: Option<&Attachment>) -> Self {
        match attachment {
            None => Self::default(),
            Some(a) => Self {
                id: Some(a.id.to_string()),
                name: Some(a.name.clone()),
                content_type: Some(a.content_type.clone()),
                size: Some(i64::try_from(a.size).unwrap_or(i64::MAX)),
                sha256: Some(a.sha256.to_hex()),
            },
        }
    }

    /// The attachment; columns set only in part, or values that do not parse, are
    /// `MalformedRow`.
    pub fn decode(self) -> Result<Option<Attachment>, MalformedRow> {
        let bad = || MalformedRow("messages.attachment");
        match (
            self.id,
            self.name,
            self.content_type,
            self.size,
            self.sha256,
        ) {
            (None, None, None, None, None) => Ok(None),
            (Some(id), Some(name), Some(content_type), Some(size), Some(sha256)) => {
                Ok(Some(Attachment {
                    id: AttachmentId::parse(&id).map_err(|_| bad())?,
                    name,
                    content_type,
                    size: u64::try_from(size).map_err(|_| bad())?,
                    sha256: BlobId::parse(&sha256).ok_or_else(bad)?,
                }))
            }
            _ => Err(bad()),
        }
    }
}

impl MessageColumns {
    /// The message; a value that does not parse is `MalformedRow` naming its column.
    pub fn decode(self) -> Result<Message, MalformedRow> {
        Ok(Message {
            id: MessageId::parse(&self.id).map_err(|_| MalformedRow("messages.id"))?,
            chat_id: ChatId::parse(&self.chat_id).map_err(|_| MalformedRow("messages.chat_id"))?,
            seq: self.seq,
            sender_type: SenderType::parse(&self.sender_type)
                .ok_or(MalformedRow("messages.sender_type"))?,
            sender_id: self.sender_id,
            content: self.content,
            created_at: Timestamp::from_unix_millis(self.created_at),
            client_message_id: self.client_message_id,
            event: self
                .event
                .map(|e| serde_json::from_str(&e))
                .transpose()
                .map_err(|_| MalformedRow("messages.event"))?,
            attachment: self.attachment.decode()?.map(Box::new),
        })
    }
}

/// An officer's columns as a store reads them, before they are checked.
#[derive(Debug, Clone)]
pub struct OfficerColumns {
    /// `officers.id`.
    pub id: String,
    /// `officers.display_name`.
    pub display_name: Option<String>,
    /// `officers.password_hash`.
    pub password_hash: Option<String>,
    /// `officers.created_at`, Unix milliseconds.
    pub created_at: i64,
    /// `officers.disabled`.
    pub disabled: bool,
    /// `officers.availability`.
    pub availability: String,
    /// `officers.capacity` (none: the server's default).
    pub capacity: Option<i64>,
    /// How many chats are assigned to the officer now (a count, not a column).
    pub open_chats: i64,
    /// Whether a node holds presence for them (an `EXISTS` on `presence`).
    pub connected: bool,
}

impl OfficerColumns {
    /// The officer with their password hash; an id that does not parse is
    /// `MalformedRow("officers.id")`.
    pub fn decode(self) -> Result<OfficerRecord, MalformedRow> {
        Ok(OfficerRecord {
            officer: Officer {
                id: OfficerId::parse(self.id).map_err(|_| MalformedRow("officers.id"))?,
                display_name: self.display_name,
                created_at: Timestamp::from_unix_millis(self.created_at),
                disabled: self.disabled,
                availability: Availability::parse(&self.availability)
                    .ok_or(MalformedRow("officers.availability"))?,
                capacity: self
                    .capacity
                    .map(|c| u32::try_from(c).map_err(|_| MalformedRow("officers.capacity")))
                    .transpose()?,
                open_chats: u32::try_from(self.open_chats)
                    .map_err(|_| MalformedRow("officers.open_chats"))?,
                connected: self.connected,
            },
            password_hash: self.password_hash,
        })
    }
}

/// The statement that moves a side's read mark of a chat forward (`chat` and `seq` are
/// the placeholders of the backend's dialect), returning the chat's columns, or nothing
/// when the mark is at or past `seq` already or `seq` is past the chat's newest entry.
/// Only a customer or an officer has a mark.
pub fn read_mark_sql(side: SenderType, chat: &str, seq: &str) -> Result<String, StoreError> {
    let column = match side {
        SenderType::Customer => "customer_last_read_seq",
        SenderType::Officer => "officer_last_read_seq",
        SenderType::System => return Err(StoreError::backend("the system has no read mark")),
    };
    Ok(format!(
        "UPDATE chats SET {column} = {seq} WHERE id = {chat} AND {seq} > {column} \
         AND {seq} <= last_seq RETURNING id, customer_id, assigned_officer_id, status, \
         created_at, customer_name, updated_at, resolved_at, last_seq, \
         customer_last_read_seq, officer_last_read_seq"
    ))
}
