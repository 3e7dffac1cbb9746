//! The rooms a connection has joined (chats, the officers' queue, and an officer's own
//! events) and their feeds: a small list of boxed waits, each owning its source and
//! handing it back with the next event; joining, leaving and the rooms limit. Whether a
//! reader may join or stay in a chat is `ChatService`'s answer (a chat's feed asks again
//! whenever the right may have changed).

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use chatcore::{ChatFeed, ChatId, Envelope, RecvError, Subscription};
use futures_util::future::BoxFuture;

use super::{Live, Reply};
use crate::error::ApiError;
use crate::extract::parse_chat_id;

/// A joined room, or the officer's own events (not a room the client joined).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Room {
    Chat(ChatId),
    Queue,
    Officer,
}

/// Where a room's events come from.
pub(super) enum Source {
    Chat(ChatFeed),
    Sub(Subscription),
}

/// What a room's source yielded.
pub(super) enum Next {
    Event(Arc<Envelope>),
    /// The bus is gone.
    End,
    /// A chat feed could not read the store.
    Failed(chatcore::Error),
    /// A subscription fell behind and lost this many events.
    Lagged(u64),
}

/// A room and the pending wait for its next event. The future owns the source and
/// hands it back with the event, to be armed again; dropping it leaves the room (both
/// `ChatFeed::next_event` and `Subscription::recv` lose nothing when cancelled).
pub(super) struct Feed {
    pub(super) room: Room,
    pub(super) next: BoxFuture<'static, (Source, Next)>,
}

impl Feed {
    pub(super) fn new(room: Room, source: Source) -> Self {
        Self {
            room,
            next: arm(source),
        }
    }
}

pub(super) fn arm(mut source: Source) -> BoxFuture<'static, (Source, Next)> {
    Box::pin(async move {
        let next = match &mut source {
            Source::Chat(feed) => match feed.next_event().await {
                Ok(Some(envelope)) => Next::Event(envelope),
                Ok(None) => Next::End,
                Err(e) => Next::Failed(e),
            },
            Source::Sub(subscription) => match subscription.recv().await {
                Ok(envelope) => Next::Event(envelope),
                Err(RecvError::Lagged(missed)) => Next::Lagged(missed),
                Err(RecvError::Closed) => Next::End,
            },
        };
        (source, next)
    })
}

impl Live {
    /// Rooms joined now: chats, and the officers' queue.
    fn rooms(&self) -> usize {
        self.rooms
            .feeds
            .iter()
            .filter(|feed| feed.room != Room::Officer)
            .count()
    }

    fn joined(&self, room: Room) -> bool {
        self.rooms.feeds.iter().any(|feed| feed.room == room)
    }

    /// Adds a room, growing the list by exactly one (a connection is mostly in one room
    /// or two; `Vec::push` would make room for four).
    pub(super) fn add(&mut self, feed: Feed) {
        self.rooms.feeds.reserve_exact(1);
        self.rooms.feeds.push(feed);
    }

    /// Leaves a room: its source is dropped, so nothing of it is sent after this.
    fn leave(&mut self, room: Room) {
        self.rooms.feeds.retain(|feed| feed.room != room);
        self.rooms.feeds.shrink_to_fit();
    }

    /// Refuses a join that would take the connection over its room limit.
    fn room_limit(&self, already_joined: bool) -> Result<(), ApiError> {
        let max = self.state.limits().settings().ws_rooms_per_connection;
        if already_joined || self.rooms() < max {
            return Ok(());
        }
        Err(ApiError::transport(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_rooms",
            format!("at most {max} rooms per connection; leave one before joining another"),
        ))
    }

    pub(super) async fn join_chat(
        &mut self,
        chat_id: &str,
        after_seq: Option<u64>,
    ) -> Result<Reply, ApiError> {
        let chat = parse_chat_id(chat_id)?;
        let room = Room::Chat(chat);
        self.room_limit(self.joined(room))?;
        // Rights are checked by the service on every join.
        let feed = self
            .state
            .service()
            .watch_chat(self.actor(), chat, after_seq)
            .await?;
        // Joining again replaces the earlier feed: nothing of it follows the reply.
        self.leave(room);
        tracing::debug!(%chat, after_seq, "joined chat");
        self.add(Feed::new(room, Source::Chat(feed)));
        Ok(Reply::Joined(format!("chat:{chat}")))
    }

    pub(super) fn join_officers(&mut self) -> Result<Reply, ApiError> {
        self.room_limit(self.joined(Room::Queue))?;
        let subscription = self.state.service().watch_queue(self.actor())?;
        self.leave(Room::Queue);
        self.add(Feed::new(Room::Queue, Source::Sub(subscription)));
        Ok(Reply::Joined("officers:all".into()))
    }

    /// `typing`: told to the others in the chat.
    pub(super) async fn typing(&mut self, chat_id: &str) -> Result<Reply, ApiError> {
        let chat = parse_chat_id(chat_id)?;
        self.state.service().typing(self.actor(), chat).await?;
        Ok(Reply::Done)
    }

    /// `read`: the reader's mark moves forward; the chat's room hears `read`.
    pub(super) async fn read(&mut self, chat_id: &str, seq: u64) -> Result<Reply, ApiError> {
        let chat = parse_chat_id(chat_id)?;
        self.state
            .service()
            .mark_read(self.actor(), chat, seq)
            .await?;
        Ok(Reply::Done)
    }

    pub(super) fn leave_chat(&mut self, chat_id: &str) -> Result<Reply, ApiError> {
        let chat = parse_chat_id(chat_id)?;
        self.leave(Room::Chat(chat));
        Ok(Reply::Left(format!("chat:{chat}")))
    }
}

/// The next event of any joined room, starting at the cursor (so a busy room cannot
/// starve the others).
pub(super) fn poll_feeds(
    feeds: &mut [Feed],
    cursor: &mut u32,
    cx: &mut Context<'_>,
) -> Poll<(usize, Source, Next)> {
    let len = feeds.len();
    for k in 0..len {
        let i = (*cursor as usize + k) % len;
        if let Poll::Ready((source, next)) = feeds[i].next.as_mut().poll(cx) {
            // Fewer rooms than u32::MAX: the room limit is far below it.
            *cursor = u32::try_from(i + 1).unwrap_or(0);
            return Poll::Ready((i, source, next));
        }
    }
    Poll::Pending
}
