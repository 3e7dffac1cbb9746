//! The real-time session layer every transport shares (`/ws`, Socket.IO at
//! `/socket.io/`; a third, SSE say, would be another small translator): one
//! connection's session (a `chatcore::LiveSession`, opened with a bearer token under the
//! client address's budget of failed tokens), the rooms it has joined and their feeds,
//! its frame budget and its rooms limit. It decides nothing itself: `ChatService`
//! answers every join, typing and read mark, and a chat's feed asks again whenever the
//! reader's right may have changed. It knows nothing of frames, acknowledgements or
//! sockets: a transport turns a client's message into a [`ClientFrame`], calls
//! [`Live::request`], and turns the [`Reply`] or the refusal into its own words; it
//! polls [`Live::poll_event`] and [`Live::poll_session`] in its loop and writes what
//! they yield with its own back-pressure.
//!
//! Files: this one holds the session and the requests; `rooms` the joined rooms and
//! their feeds.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chatcore::wire::{ClientFrame, ErrorFrame, ServerFrame};
use chatcore::{Actor, ChatId, Envelope, ErrorKind, LiveSession, SessionNotice, Throttle};

use crate::error::ApiError;
use crate::state::AppState;

mod rooms;

use rooms::{Feed, Next, Room, Source};

/// The rooms a connection has joined and their feeds, apart from the session so that a
/// transport's loop can wait on both at once ([`Live::waits`]).
pub(crate) struct Rooms {
    /// Joined rooms (and an officer's own events); empty, it allocates nothing.
    feeds: Vec<Feed>,
    /// Where the next poll of the feeds starts, so a busy room cannot starve the others.
    cursor: u32,
}

/// One connection's session, rooms and budgets, whatever carries it.
pub(crate) struct Live {
    state: AppState,
    /// The session, once authenticated.
    session: Option<LiveSession>,
    rooms: Rooms,
    /// The connection's frame budget, and how many frames in a row it has refused.
    frames: Throttle,
    refused_frames: u32,
}

/// A request that was carried out.
pub(crate) enum Reply {
    /// A room was joined (`chat:<id>` or `officers:all`).
    Joined(String),
    /// A chat's room was left.
    Left(String),
    /// Done; nothing to say (`typing`, `read`).
    Done,
}

/// Why a session was not opened.
pub(crate) enum Refused {
    /// The token is unknown, revoked or expired (/ws: 4401).
    Unauthorized,
    /// Too many failed tokens from this address (`rate_limited` with `Retry-After`).
    Limited(ApiError),
    /// The store could not answer.
    Failed(ApiError),
}

/// A client message over the connection's frame budget.
pub(crate) struct OverBudget {
    /// `rate_limited`, with when to retry.
    pub(crate) error: ApiError,
    /// The client has gone on sending as many messages again while refused: it is not
    /// listening, and the transport closes the connection.
    pub(crate) close: bool,
}

/// What the joined rooms yielded.
pub(crate) enum Happening {
    /// An event to forward, its JSON shared by every receiver.
    Event(Arc<Envelope>),
    /// The reader lost the right to a chat (another officer claimed it, say): the room is
    /// left, and the client is told with this `error` frame naming it.
    Lost(Box<ServerFrame>),
    /// A chat feed could not read the store: the client cannot tell what it missed and
    /// must reconnect and rejoin with `afterSeq` (/ws: 1011).
    Failed,
    /// A subscription (the queue's, the officer's) fell behind the bus and lost events
    /// that only a fresh read gives back (/ws: 4008).
    Lagged,
}

impl Live {
    pub(crate) fn new(state: AppState) -> Self {
        let frames = state.limits().ws_frames();
        Self {
            state,
            session: None,
            rooms: Rooms {
                feeds: Vec::new(),
                cursor: 0,
            },
            frames,
            refused_frames: 0,
        }
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }

    /// The identity, `Anonymous` until authenticated.
    pub(crate) fn actor(&self) -> &Actor {
        static ANONYMOUS: Actor = Actor::Anonymous;
        self.session.as_ref().map_or(&ANONYMOUS, LiveSession::actor)
    }

    /// Opens the session of `token`, counted against `client`'s budget of failed
    /// tokens. An officer's connection then hears of chats assigned to them without
    /// joining anything.
    pub(crate) async fn open(
        &mut self,
        token: &str,
        client: Option<IpAddr>,
    ) -> Result<ServerFrame, Refused> {
        let attempt = self.state.service().open_live_session(token);
        let session = match self.state.limits().token(client, attempt).await {
            Ok(session) => session,
            Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => {
                return Err(Refused::Unauthorized);
            }
            Err(e) if e.retry_after_secs().is_some() => return Err(Refused::Limited(e)),
            Err(e) => return Err(Refused::Failed(e)),
        };
        let actor = session.actor().clone();
        if matches!(actor, Actor::Officer(_)) {
            match self.state.service().watch_officer(&actor) {
                Ok(subscription) => self.add(Feed::new(Room::Officer, Source::Sub(subscription))),
                Err(e) => tracing::error!(error = ?e, "cannot watch officer events"),
            }
        }
        self.session = Some(session);
        Ok(ServerFrame::Ready {
            role: actor.role().to_string(),
            subject: actor.subject().to_string(),
        })
    }

    /// Counts a client message against the connection's frame budget.
    pub(crate) fn admit(&mut self) -> Result<(), OverBudget> {
        let clock = self.state.service().config().clock.as_ref();
        let Err(e) = self.frames.check(clock) else {
            self.refused_frames = 0;
            return Ok(());
        };
        self.refused_frames = self.refused_frames.saturating_add(1);
        crate::metrics::rate_limited(crate::metrics::limit::WS_FRAMES);
        let allowed = self
            .state
            .limits()
            .settings()
            .ws_frames_per_connection
            .map_or(u32::MAX, |rate| rate.count());
        let close = self.refused_frames >= allowed;
        if close {
            tracing::info!("frame limit grossly exceeded; closing");
        }
        Err(OverBudget {
            error: e.into(),
            close,
        })
    }

    /// Carries out a request of an authenticated client.
    pub(crate) async fn request(&mut self, frame: ClientFrame) -> Result<Reply, ApiError> {
        let result = match frame {
            ClientFrame::Auth { .. } => Err(ApiError::transport(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_frame",
                "this connection is already authenticated",
            )),
            ClientFrame::JoinChat { chat_id, after_seq } => {
                self.join_chat(&chat_id, after_seq).await
            }
            ClientFrame::JoinOfficers => self.join_officers(),
            ClientFrame::LeaveChat { chat_id } => self.leave_chat(&chat_id),
            ClientFrame::Typing { chat_id } => self.typing(&chat_id).await,
            ClientFrame::Read { chat_id, seq } => self.read(&chat_id, seq).await,
        };
        if let Err(e) = &result
            && e.status().is_server_error()
        {
            tracing::error!(
                error = ?e,
                role = self.actor().role(),
                subject = self.actor().subject(),
                "request failed"
            );
        }
        result
    }

    /// The next thing the joined rooms yield (see [`Rooms::poll_event`]).
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Happening> {
        self.rooms.poll_event(cx)
    }

    /// The session and the rooms, borrowed apart: a transport's loop waits on
    /// [`poll_session`] and [`Rooms::poll_event`] in one `select!`.
    pub(crate) fn waits(&mut self) -> (Option<&LiveSession>, &mut Rooms) {
        (self.session.as_ref(), &mut self.rooms)
    }

    /// Asks the store whether the session is still valid: false when it has ended. A
    /// store that cannot answer leaves it open until the next check.
    pub(crate) async fn recheck(&mut self) -> bool {
        let Some(session) = &self.session else {
            return true;
        };
        match session.recheck().await {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::Unauthorized => false,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot re-check a session; trying later");
                true
            }
        }
    }

    /// How long until the session expires, when it does.
    pub(crate) fn expires_in(&self) -> Option<Duration> {
        self.session.as_ref().and_then(LiveSession::expires_in)
    }

    /// Leaves every room (a transport that stops following, the client too slow).
    pub(crate) fn leave_all(&mut self) {
        self.rooms.feeds = Vec::new();
    }
}

/// Whether the session has news; pending before authentication.
pub(crate) fn poll_session(
    session: Option<&LiveSession>,
    cx: &mut Context<'_>,
) -> Poll<SessionNotice> {
    session.map_or(Poll::Pending, |s| s.poll_notice(cx))
}

impl Rooms {
    /// The next thing the joined rooms yield. Polled with the task's own context, so a
    /// room with nothing keeps waking the task.
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Happening> {
        loop {
            let Poll::Ready((i, source, next)) =
                rooms::poll_feeds(&mut self.feeds, &mut self.cursor, cx)
            else {
                return Poll::Pending;
            };
            match next {
                Next::Event(envelope) => {
                    self.feeds[i].next = rooms::arm(source);
                    return Poll::Ready(Happening::Event(envelope));
                }
                Next::End => {
                    self.feeds.swap_remove(i);
                }
                Next::Failed(e) if e.kind() == ErrorKind::Forbidden => {
                    // The reader lost the chat: leave the room, and say which.
                    let room = self.feeds.swap_remove(i).room;
                    drop(source);
                    if let Room::Chat(chat) = room {
                        tracing::debug!(%chat, "left a chat the reader may no longer read");
                        return Poll::Ready(Happening::Lost(Box::new(lost(chat, e.into()))));
                    }
                }
                Next::Failed(e) => {
                    tracing::error!(error = ?e, "chat feed failed");
                    return Poll::Ready(Happening::Failed);
                }
                Next::Lagged(missed) => {
                    tracing::info!(missed, "subscriber lagged; closing");
                    return Poll::Ready(Happening::Lagged);
                }
            }
        }
    }
}

/// The `error` frame that tells a reader it has left a chat it may no longer read.
fn lost(chat: ChatId, e: ApiError) -> ServerFrame {
    ServerFrame::Error(ErrorFrame {
        room: Some(format!("chat:{chat}")),
        chat_id: Some(chat.to_string()),
        ..ErrorFrame::new(e.code(), e.message())
    })
}
