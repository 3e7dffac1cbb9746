//! Messages: sending (validation, idempotency by `clientMessageId`, dense seq, the sender
//! always taken from the actor), paging, and reading a chat.

use super::{ChatService, DEFAULT_PAGE, MAX_PAGE, Sender};
use crate::bus::{Event, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, MessageId};
use crate::model::{Chat, Message, SenderType};
use crate::policy::{self, ReadRight};
use crate::store::{AppendOutcome, NewMessage, PageQuery};
use crate::text;

/// Longest `clientMessageId`, in bytes.
pub const MAX_CLIENT_MESSAGE_ID_LEN: usize = 128;

/// Input of [`ChatService::send_message`].
#[derive(Debug, Clone, Default)]
pub struct SendMessage {
    /// The text (not empty, not only invisible characters such as whitespace or
    /// zero-width spaces; at most the configured number of characters).
    pub content: String,
    /// Idempotency key: a retry with the same key in the same chat by the same sender
    /// returns the original message instead of storing a second one.
    pub client_message_id: Option<String>,
    /// A `senderType` the client claimed (as the original clients sent it); refused
    /// unless it matches the actor.
    pub claimed_sender_type: Option<String>,
    /// A `senderId` the client claimed; refused unless it matches the actor.
    pub claimed_sender_id: Option<String>,
}

impl SendMessage {
    /// A message with just this text.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }

    /// Adds an idempotency key.
    pub fn with_client_message_id(mut self, key: impl Into<String>) -> Self {
        self.client_message_id = Some(key.into());
        self
    }
}

/// Result of [`ChatService::send_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The stored message (the original one for a repeated `clientMessageId`).
    pub message: Message,
    /// False when the `clientMessageId` had been used before and nothing was stored.
    pub created: bool,
}

/// A request for a page of messages (see [`PageQuery`] for the window's meaning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessagePage {
    /// Only messages with a greater seq.
    pub after: Option<u64>,
    /// Only messages with a smaller seq; the page is then the newest below it.
    pub before: Option<u64>,
    /// 1..=1000; default 100.
    pub limit: Option<u32>,
}

/// How many times a send is decided again after the chat changed under it.
const MAX_WRITE_RACES: usize = 8;

impl ChatService {
    /// The chat, if the actor may read it.
    pub async fn chat(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        let chat = self.load_chat(actor, chat).await?;
        policy::read_chat(actor, &chat)?;
        self.placed(chat).await
    }

    /// Sends a message as the actor (the chat's customer or its assigned officer) and
    /// publishes `new_message` to `chat:<id>` once it is stored.
    ///
    /// Each attempt counts against the sender's limit ([`crate::Limits`]), whatever its
    /// outcome: over it, [`Error::RateLimited`] before anything is read or stored.
    pub async fn send_message(
        &self,
        actor: &Actor,
        chat: ChatId,
        request: SendMessage,
    ) -> Result<Sent> {
        if let Some(sender) = Sender::of(actor) {
            if let Err(e) = self.inner.sends.check(&sender) {
                tracing::warn!(%sender, "message refused: the sender is over their limit");
                return Err(e);
            }
        }
        let chat = self.load_chat(actor, chat).await?;
        let sender = match policy::write_chat(actor, &chat) {
            Ok(sender) => sender,
            // A retry of a message that was stored (its answer lost on the way) before
            // the chat ended or was handed on gets the original, as any retry does.
            Err(refusal) => {
                return match self
                    .sent_before(actor, &chat, request.client_message_id.as_deref())
                    .await?
                {
                    Some(message) => Ok(Sent {
                        message,
                        created: false,
                    }),
                    None => Err(refusal),
                };
            }
        };
        policy::claimed_sender(
            request.claimed_sender_type.as_deref(),
            request.claimed_sender_id.as_deref(),
            &sender,
        )?;
        self.validate_content(&request.content)?;
        if let Some(key) = &request.client_message_id {
            if key.is_empty() || key.len() > MAX_CLIENT_MESSAGE_ID_LEN {
                return Err(Error::InvalidField {
                    name: "clientMessageId",
                    reason: format!("must be 1-{MAX_CLIENT_MESSAGE_ID_LEN} bytes"),
                });
            }
        }
        let (sender_type, sender_id) = sender;
        let new = NewMessage {
            id: MessageId::new(),
            chat_id: chat.id,
            sender_type,
            sender_id,
            content: request.content,
            client_message_id: request.client_message_id,
            created_at: self.now(),
            event: None,
            // Stored only if the chat is still as it was when the write was allowed: a
            // resolution or hand-over on another node in between is not written past.
            decided_on: Some((chat.status, chat.assigned_officer_id.clone())),
            attachment: None,
        };
        let sent = self.deliver(actor, new).await?;
        self.replied(&chat, &sent);
        Ok(sent)
    }

    /// Observes the time to first reply ([`crate::metrics::FIRST_REPLY`]) when `sent`
    /// is the first officer message of `chat`: asked of the store (one read on an index)
    /// in a task of its own, after the send has been answered, and only for officers'
    /// new messages. The chat's creation is when it entered the queue.
    pub(super) fn replied(&self, chat: &Chat, sent: &Sent) {
        if !sent.created || sent.message.sender_type != SenderType::Officer {
            return;
        }
        let (store, id, entered) = (self.inner.store.clone(), sent.message.id, chat.created_at);
        let (chat, at) = (sent.message.chat_id, sent.message.created_at);
        tokio::spawn(async move {
            match store.first_reply(&chat).await {
                Ok(Some(first)) if first == id => {
                    let millis = at.unix_millis().saturating_sub(entered.unix_millis());
                    crate::metrics::first_reply(std::time::Duration::from_millis(
                        u64::try_from(millis).unwrap_or(0),
                    ));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot tell a first reply"),
            }
        });
    }

    /// Stores a message that `policy::write_chat` allowed on the chat as `new.decided_on`
    /// says, and publishes `new_message` once it is stored, under the chat's order lock:
    /// a text or an attachment alike. A chat that changed meanwhile is decided again.
    pub(super) async fn deliver(&self, actor: &Actor, mut new: NewMessage) -> Result<Sent> {
        let actor = actor.clone();
        self.ordered(new.chat_id, move |this| async move {
            for _ in 0..MAX_WRITE_RACES {
                match this.inner.store.append_message(&new).await? {
                    AppendOutcome::Created(message) => {
                        this.publish(
                            Topic::Chat(message.chat_id),
                            Event::NewMessage {
                                message: message.clone(),
                            },
                        );
                        return Ok(Sent {
                            message,
                            created: true,
                        });
                    }
                    AppendOutcome::Duplicate(message) => {
                        return Ok(Sent {
                            message,
                            created: false,
                        });
                    }
                    // The chat changed meanwhile: may the sender still write to it?
                    AppendOutcome::Stale(now) => {
                        policy::write_chat(&actor, &now)?;
                        new.decided_on = Some((now.status, now.assigned_officer_id));
                    }
                }
            }
            Err(Error::Unavailable(
                "the chat kept changing while the message was sent".into(),
            ))
        })
        .await
    }

    /// The message the actor stored in `chat` under the idempotency key `key`, if any:
    /// only what they sent themselves.
    pub(super) async fn sent_before(
        &self,
        actor: &Actor,
        chat: &Chat,
        key: Option<&str>,
    ) -> Result<Option<Message>> {
        let (Some(key), Some((sender_type, sender_id))) = (key, policy::sender(actor)) else {
            return Ok(None);
        };
        Ok(self
            .inner
            .store
            .sent_message(&chat.id, sender_type, &sender_id, key)
            .await?)
    }

    /// A page of a chat's messages, ascending by seq, if the actor may read the chat.
    ///
    /// The page holds at most `limit` messages and stops before their JSON would pass
    /// [`ServiceConfig::max_page_bytes`](super::ServiceConfig::max_page_bytes) (but
    /// holds at least one when there is one): a short page does not mean the end, the
    /// caller pages on from the last seq it got.
    pub async fn messages(
        &self,
        actor: &Actor,
        chat: ChatId,
        page: MessagePage,
    ) -> Result<Vec<Message>> {
        let query = page_query(page, self.config().max_page_bytes)?;
        let chat = self.load_chat(actor, chat).await?;
        let right = policy::read_chat(actor, &chat)?;
        let page = self.inner.store.messages(&chat.id, &query).await?;
        if right == ReadRight::WhilePending && !page.is_empty() {
            // Read, then check again, as a feed does: the chat may have been claimed
            // between the first check and the read, and its new owner's messages are not
            // for this reader.
            let now = self
                .inner
                .store
                .chat(&chat.id)
                .await?
                .ok_or(Error::ChatNotFound)?;
            policy::read_chat(actor, &now)?;
        }
        Ok(page)
    }

    /// Loads a chat for an identified actor. Anonymous callers learn nothing, and a
    /// customer asking for any chat but their own is refused before the lookup, so that
    /// 403 and 404 cannot tell them which other chat ids exist.
    pub(super) async fn load_chat(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        policy::look_up_chat(actor, chat)?;
        self.inner
            .store
            .chat(&chat)
            .await?
            .ok_or_else(|| policy::chat_missing(actor))
    }

    fn validate_content(&self, content: &str) -> Result<()> {
        // Stops at the first visible character: cheap for any real message.
        if content.chars().all(text::is_invisible) {
            return Err(Error::EmptyContent);
        }
        let max = self.config().max_message_chars;
        // Byte length bounds the character count from above: count only when needed.
        if content.len() > max && content.chars().count() > max {
            return Err(Error::ContentTooLong { max });
        }
        Ok(())
    }
}

fn page_query(page: MessagePage, max_bytes: usize) -> Result<PageQuery> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidParameter {
            name: "limit",
            reason: format!("must be between 1 and {MAX_PAGE}"),
        });
    }
    Ok(PageQuery {
        after: page.after,
        before: page.before,
        limit,
        max_bytes,
    })
}
