//! Real-time feeds for transports: a chat's messages and changes with gap-free replay
//! ([`ChatFeed`]), the queue's events and an officer's own events. A chat feed checks its
//! reader's right when it opens and again whenever the right may have changed, so that
//! nothing of a chat reaches someone who may no longer read it.

use std::collections::VecDeque;

use super::{ChatService, MAX_PAGE};
use std::sync::Arc;

use super::desk::QueueView;
use crate::bus::{Envelope, Event, RecvError, Subscription, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::ChatId;
use crate::model::Message;
use crate::policy::{self, ReadRight};
use crate::store::{PageQuery, QueueKey};
use tokio::sync::watch;

/// Most bytes of message JSON a feed reads from the store at once while it catches up
/// (a replay, or a gap after lagging); the rest follows page by page, so a feed never
/// holds a whole long history in memory.
const FEED_PAGE_BYTES: usize = 128 * 1024;

/// One chat's messages in seq order with no gap and no duplicate: first those after the
/// requested seq (read from the store), then live ones as they are stored; and the chat's
/// changes (`chat_updated`) as they happen.
///
/// It subscribes before it reads, then skips live events it has already replayed. When a
/// live event arrives past a gap (an event lost on the way, or the subscriber lagged
/// behind the bus), it fills the gap from the store, so a consumer never has to.
///
/// The reader's right is checked again, against the chat as stored, on every change of
/// the chat and, while the right holds only because the chat is pending (an officer
/// reading the queue), before every message handed out: after a page is read from the
/// store, and after a live message arrives, so that a message stored after the chat was
/// claimed by someone else is never handed out, whichever node announces what first.
/// Once the right is gone, [`ChatFeed::next_event`] returns the refusal
/// ([`Error::Forbidden`]) and so does every later call: the transport leaves the room.
#[derive(Debug)]
pub struct ChatFeed {
    service: ChatService,
    chat: ChatId,
    reader: Actor,
    right: ReadRight,
    subscription: Subscription,
    /// The seq of the last message handed out (or the starting point).
    last_seq: u64,
    /// Messages read from the store and not handed out yet.
    backlog: VecDeque<Message>,
    /// True while the store may hold messages past `last_seq` not yet read.
    catching_up: bool,
    /// A live event taken from the bus, handed out once the reader's right is checked
    /// again (kept here so that a call cancelled during the check loses nothing).
    held: Option<Arc<Envelope>>,
    /// True once the reader lost the right to the chat.
    refused: bool,
    /// For the chat's customer: this node's view of the queue, and the chat's key in it.
    positions: Option<watch::Receiver<Arc<QueueView>>>,
    key: QueueKey,
    /// The last place in the queue handed out (`None`: not waiting).
    position: Option<u32>,
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

    /// The next message. `Ok(None)` when the bus has shut down; [`Error::Forbidden`] once
    /// the reader may no longer read the chat. Cancel-safe: a call dropped before it
    /// returns loses nothing.
    pub async fn next(&mut self) -> Result<Option<Message>> {
        loop {
            match self.next_event().await? {
                None => return Ok(None),
                Some(envelope) => {
                    if let Some(message) = envelope.message() {
                        return Ok(Some(message.clone()));
                    }
                }
            }
        }
    }

    /// The next event of the chat: a `new_message` (whose JSON frame is shared with every
    /// other subscriber that sends it, as a transport fanning out to many sockets wants)
    /// or a `chat_updated`. `Ok(None)` when the bus has shut down; [`Error::Forbidden`]
    /// once the reader may no longer read the chat. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Option<Arc<Envelope>>> {
        loop {
            if self.refused {
                return Err(lost_right());
            }
            if let Some(envelope) = self.held.clone() {
                self.check_right().await?;
                self.held = None;
                if let Some(message) = envelope.message() {
                    self.last_seq = message.seq;
                }
                return Ok(Some(envelope));
            }
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
                            max_bytes: FEED_PAGE_BYTES,
                            ..PageQuery::after(self.last_seq, MAX_PAGE)
                        },
                    )
                    .await?;
                // Read, then check: a right that still holds now covers every message
                // stored before now.
                if self.right == ReadRight::WhilePending && !page.is_empty() {
                    self.check_right().await?;
                }
                // A page may stop short at its byte cap: only an empty one ends the
                // catching up.
                self.catching_up = !page.is_empty();
                self.backlog.extend(page);
                continue;
            }
            let received = tokio::select! {
                received = self.subscription.recv() => received,
                Some(()) = queue_moved(&mut self.positions) => {
                    if let Some(moved) = self.moved_in_queue() {
                        return Ok(Some(moved));
                    }
                    continue;
                }
            };
            match received {
                Ok(envelope) => match envelope.event() {
                    Event::NewMessage { message } => {
                        if message.seq <= self.last_seq {
                            continue; // already replayed
                        }
                        if message.seq == self.last_seq + 1 {
                            if self.right == ReadRight::WhilePending {
                                self.held = Some(envelope);
                                continue;
                            }
                            self.last_seq = message.seq;
                            return Ok(Some(envelope));
                        }
                        // A gap: the missing ones (and this one) are in the store.
                        self.catching_up = true;
                    }
                    Event::ChatUpdated { .. } => self.held = Some(envelope),
                    // The other side's typing and read marks; not the reader's own.
                    Event::Typing {
                        sender_type,
                        sender_id,
                        ..
                    }
                    | Event::Read {
                        reader_type: sender_type,
                        reader_id: sender_id,
                        ..
                    } if !is_reader(&self.reader, *sender_type, sender_id) => {
                        return Ok(Some(envelope));
                    }
                    _ => {}
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(chat = %self.chat, missed, "chat feed lagged; reading the store");
                    // A change of the chat may be among the lost events. Marked first, so
                    // that a call cancelled during the check does not forget the gap.
                    self.catching_up = true;
                    self.check_right().await?;
                }
                Err(RecvError::Closed) => return Ok(None),
            }
        }
    }

    /// A `queue_position` when the chat's place in this node's view of the queue is not
    /// the one last handed out (the view changes at most once a second).
    fn moved_in_queue(&mut self) -> Option<Arc<Envelope>> {
        let position = self
            .positions
            .as_mut()?
            .borrow_and_update()
            .exact(&self.key);
        if position == self.position {
            return None;
        }
        self.position = position;
        Some(Envelope::new(
            Topic::Chat(self.chat),
            Event::QueuePosition {
                chat_id: self.chat,
                position: position?,
            },
        ))
    }

    /// Asks the policy again, on the chat as stored now. A refusal is final.
    async fn check_right(&mut self) -> Result<()> {
        let chat = self
            .service
            .inner
            .store
            .chat(&self.chat)
            .await?
            .ok_or(Error::ChatNotFound)?;
        match policy::read_chat(&self.reader, &chat) {
            Ok(right) => {
                self.right = right;
                Ok(())
            }
            Err(_) => {
                tracing::debug!(chat = %self.chat, "reader lost the right to the chat");
                self.refused = true;
                self.held = None;
                self.backlog.clear();
                Err(lost_right())
            }
        }
    }
}

/// Resolves when the view of the queue changed (never without one, or once the view is
/// gone).
async fn queue_moved(positions: &mut Option<watch::Receiver<Arc<QueueView>>>) -> Option<()> {
    match positions {
        Some(positions) => positions.changed().await.ok(),
        None => std::future::pending().await,
    }
}

/// Whether a chat's customer or officer `id` is the feed's reader.
fn is_reader(reader: &Actor, side: crate::model::SenderType, id: &str) -> bool {
    use crate::model::SenderType;
    match (reader, side) {
        (Actor::Customer { customer_id, .. }, SenderType::Customer) => customer_id.as_str() == id,
        (Actor::Officer(me), SenderType::Officer) => me.as_str() == id,
        _ => false,
    }
}

fn lost_right() -> Error {
    Error::forbidden("you may no longer read this chat (it was taken by another officer)")
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
        // Subscribe first, then read: nothing stored or changed after this point can be
        // missed, the chat's changes included.
        let subscription = self.inner.bus.subscribe(&Topic::Chat(chat));
        let chat = self.load_chat(actor, chat).await?;
        let right = policy::read_chat(actor, &chat)?;
        let (last_seq, catching_up) = match after_seq {
            Some(after) => (after, true),
            None => (self.inner.store.last_seq(&chat.id).await?, false),
        };
        // A waiting chat's customer learns its place at once, then each change of it.
        let positions = matches!(actor, Actor::Customer { .. }).then(|| {
            let mut positions = self.desk().watch_queue();
            positions.mark_changed();
            positions
        });
        Ok(ChatFeed {
            service: self.clone(),
            chat: chat.id,
            reader: actor.clone(),
            right,
            subscription,
            last_seq,
            backlog: VecDeque::new(),
            catching_up,
            held: None,
            refused: false,
            positions,
            key: (chat.created_at, chat.id),
            position: None,
        })
    }

    /// The events of `officers:all` (`queue_chat_created`, `queue_chat_claimed`,
    /// `chat_updated`, `officer_updated`): officers and the admin.
    /// A subscriber told [`RecvError::Lagged`] should re-read [`ChatService::queue`].
    pub fn watch_queue(&self, actor: &Actor) -> Result<Subscription> {
        policy::watch_queue(actor)?;
        Ok(self.inner.bus.subscribe(&Topic::Officers))
    }

    /// An officer's own events (`chat_assigned`).
    pub fn watch_officer(&self, actor: &Actor) -> Result<Subscription> {
        let officer = policy::watch_officer(actor)?;
        Ok(self.inner.bus.subscribe(&Topic::Officer(officer.clone())))
    }
}
