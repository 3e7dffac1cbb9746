//! What a chat's two sides tell each other besides messages (contract v2, "Typing, read
//! receipts"): read marks, stored and only ever moving forward, announced as `read`; and
//! typing, stored nowhere, announced as `typing` with a time after which a receiver hides
//! it, so that an indicator can never stick. Also the newest entry of each chat in a
//! list (`lastMessage`), read for the whole list at once.

use std::time::Duration;

use super::{ChatService, Sender};
use crate::bus::{Event, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::ChatId;
use crate::model::{Chat, LastMessage, SenderType};
use crate::policy;
use crate::store::ReadOutcome;

/// How long a receiver shows "typing…" after a `typing` event, unless the sender's
/// next message or `typing` comes first.
pub const TYPING_SHOWN_FOR: Duration = Duration::from_secs(6);
/// At most one `typing` a second is announced per sender and chat; the others are
/// dropped (a receiver's indicator lasts [`TYPING_SHOWN_FOR`]).
pub(super) const TYPING_PER_SECOND: u32 = 1;

/// A side's read mark, as `POST /api/chats/{id}/read` answers it and `read` announces it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"chatId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "readerType": "officer", "readerId": "alice", "seq": 7}))
)]
pub struct ReadMark {
    /// The chat.
    pub chat_id: ChatId,
    /// `customer` or `officer`.
    pub reader_type: SenderType,
    /// Who read.
    pub reader_id: String,
    /// The seq of the newest entry they have seen (the mark as it now is).
    pub seq: u64,
}

impl ChatService {
    /// Moves the actor's read mark of a chat forward to `seq`: the chat's customer (any
    /// of their chats) or its officer. A lower or equal seq changes nothing; a seq past
    /// the chat's newest entry is [`Error::InvalidField`]. A mark that moved is announced
    /// to `chat:<id>` as `read`. Answers the mark as it now is.
    pub async fn mark_read(&self, actor: &Actor, chat: ChatId, seq: u64) -> Result<ReadMark> {
        let stored = self.load_chat(actor, chat).await?;
        let (side, reader) = policy::mark_read(actor, &stored)?;
        let outcome = self.inner.store.mark_read(&chat, side, seq).await?;
        let (now, moved) = match outcome {
            ReadOutcome::Moved(now) => (now, true),
            ReadOutcome::Unchanged(now) => (now, false),
            ReadOutcome::PastEnd(now) => {
                return Err(Error::InvalidField {
                    name: "seq",
                    reason: format!("past the chat's newest entry ({})", now.last_seq),
                });
            }
            ReadOutcome::NotFound => return Err(policy::chat_missing(actor)),
        };
        let mark = ReadMark {
            chat_id: chat,
            reader_type: side,
            reader_id: reader,
            seq: match side {
                SenderType::Customer => now.customer_last_read_seq,
                _ => now.officer_last_read_seq,
            },
        };
        if moved {
            self.publish(
                Topic::Chat(chat),
                Event::Read {
                    chat_id: chat,
                    reader_type: mark.reader_type,
                    reader_id: mark.reader_id.clone(),
                    seq: mark.seq,
                },
            );
        }
        Ok(mark)
    }

    /// Tells the others in the chat that the actor is typing: the chat's customer or its
    /// assigned officer, while the chat is open. Nothing is stored; at most one a second
    /// per sender and chat is announced, the rest are dropped silently.
    pub async fn typing(&self, actor: &Actor, chat: ChatId) -> Result<()> {
        let stored = self.load_chat(actor, chat).await?;
        let (sender_type, sender_id) = policy::write_chat(actor, &stored)?;
        let Some(sender) = Sender::of(actor) else {
            return Err(Error::forbidden(
                "only a chat's customer or officer types in it",
            ));
        };
        if self.inner.typing.check(&(chat, sender)).is_err() {
            return Ok(());
        }
        self.publish(
            Topic::Chat(chat),
            Event::Typing {
                chat_id: chat,
                sender_type,
                sender_id,
                expires_in_ms: u64::try_from(TYPING_SHOWN_FOR.as_millis()).unwrap_or(u64::MAX),
            },
        );
        Ok(())
    }

    /// The chats with their newest entry (`lastMessage`), read for all of them at once.
    pub(super) async fn with_last_messages(&self, mut chats: Vec<Chat>) -> Result<Vec<Chat>> {
        let keys: Vec<(ChatId, u64)> = chats
            .iter()
            .filter(|c| c.last_seq > 0)
            .map(|c| (c.id, c.last_seq))
            .collect();
        if keys.is_empty() {
            return Ok(chats);
        }
        let entries = self.inner.store.entries(&keys).await?;
        let newest: std::collections::HashMap<ChatId, LastMessage> = entries
            .iter()
            .map(|m| (m.chat_id, LastMessage::of(m)))
            .collect();
        for chat in &mut chats {
            chat.last_message = newest.get(&chat.id).cloned();
        }
        Ok(chats)
    }
}
