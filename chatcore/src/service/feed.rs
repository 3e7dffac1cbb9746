//! Real-time feeds for transports: a chat's messages with gap-free replay
//! ([`ChatFeed`]), the queue's events and an officer's own events. Rights are checked
//! when a feed is opened.

use std::collections::VecDeque;

use super::{ChatService, MAX_PAGE};
use std::sync::Arc;

use crate::bus::{Envelope, Event, RecvError, Subscription, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::ChatId;
use crate::model::Message;
use crate::policy;
use crate::store::PageQuery;

/// One chat's messages in seq order with no gap and no duplicate: first those after the
/// requested seq (read from the store), then live ones as they are stored.
///
/// It subscribes before it reads, then skips live events it has already replayed. When a
/// live event arrives past a gap (an event lost on the way, or the subscriber lagged
/// behind the bus), it fills the gap from the store, so a consumer never has to.
#[derive(Debug)]
pub struct ChatFeed {
    service: ChatService,
    chat: ChatId,
    subscription: Subscription,
    /// The seq of the last message handed out (or the starting point).
    last_seq: u64,
    /// Messages read from the store and not handed out yet.
    backlog: VecDeque<Message>,
    /// True while the store may hold messages past `last_seq` not yet read.
    catching_up: bool,
}

impl ChatFeed {
    /// The chat.
    pub fn chat_id(&self) -> ChatId {
        self.chat
    }

    /// The seq of the last message returned by [`ChatFeed::next`] (or the start point).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The next message. `Ok(None)` when the bus has shut down. Cancel-safe: a call
    /// dropped before it returns loses nothing.
    pub async fn next(&mut self) -> Result<Option<Message>> {
        Ok(self.next_event().await?.and_then(|e| e.message().cloned()))
    }

    /// The next message as a `new_message` event, whose JSON frame is shared with every
    /// other subscriber that sends it (what a transport fanning out to many sockets
    /// wants). `Ok(None)` when the bus has shut down. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Option<Arc<Envelope>>> {
        loop {
            if let Some(message) = self.backlog.pop_front() {
                self.last_seq = message.seq;
                return Ok(Some(Envelope::new(
                    Topic::Chat(self.chat),
                    Event::NewMessage { message },
                )));
            }
            if self.catching_up {
                let page = self
                    .service
                    .inner
                    .store
                    .messages(
                        &self.chat,
                        &PageQuery {
                            after: Some(self.last_seq),
                            before: None,
                            limit: MAX_PAGE,
                        },
                    )
                    .await?;
                self.catching_up = page.len() == MAX_PAGE as usize;
                self.backlog.extend(page);
                continue;
            }
            match self.subscription.recv().await {
                Ok(envelope) => {
                    let Event::NewMessage { message } = envelope.event() else {
                        continue;
                    };
                    if message.seq <= self.last_seq {
                        continue; // already replayed
                    }
                    if message.seq == self.last_seq + 1 {
                        self.last_seq = message.seq;
                        return Ok(Some(envelope));
                    }
                    // A gap: the missing ones (and this one) are in the store.
                    self.catching_up = true;
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(chat = %self.chat, missed, "chat feed lagged; reading the store");
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => return Ok(None),
            }
        }
    }
}

impl ChatService {
    /// Opens a chat's feed for an actor who may read it. With `after_seq`, the feed
    /// first replays every stored message with a greater seq; without, it starts at the
    /// chat's newest message and yields only new ones.
    pub async fn watch_chat(
        &self,
        actor: &Actor,
        chat: ChatId,
        after_seq: Option<u64>,
    ) -> Result<ChatFeed> {
        let chat = self.chat(actor, chat).await?;
        // Subscribe first, then read: nothing stored after this point can be missed.
        let subscription = self.inner.bus.subscribe(&Topic::Chat(chat.id));
        let (last_seq, catching_up) = match after_seq {
            Some(after) => (after, true),
            None => (self.inner.store.last_seq(&chat.id).await?, false),
        };
        Ok(ChatFeed {
            service: self.clone(),
            chat: chat.id,
            subscription,
            last_seq,
            backlog: VecDeque::new(),
            catching_up,
        })
    }

    /// The queue's events (`queue_chat_created`, `queue_chat_claimed`): officers only.
    /// A subscriber told [`RecvError::Lagged`] should re-read [`ChatService::queue`].
    pub fn watch_queue(&self, actor: &Actor) -> Result<Subscription> {
        policy::watch_queue(actor)?;
        Ok(self.inner.bus.subscribe(&Topic::Officers))
    }

    /// An officer's own events (`chat_assigned`).
    pub fn watch_officer(&self, actor: &Actor) -> Result<Subscription> {
        match actor {
            Actor::Officer(id) => Ok(self.inner.bus.subscribe(&Topic::Officer(id.clone()))),
            Actor::Anonymous => Err(Error::Unauthorized),
            _ => Err(Error::forbidden("only officers have officer events")),
        }
    }
}
