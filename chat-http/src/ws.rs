//! The WebSocket endpoint `GET /ws`: authenticate with the first frame, then forward the
//! rooms a client joins (a chat's messages, the officers' queue) and an officer's own
//! events. It must not decide who may join what (`ChatService` checks that on every
//! join, and a chat's feed checks it again whenever it may have changed) nor re-order,
//! re-serialize or buffer events without bound.
//!
//! Rights in use: the connection holds a `chatcore::LiveSession`. When its session ends
//! (a logout or the officer disabled, on any node) or expires, the connection closes with
//! 4401 at once; now and then (`WsSettings::session_recheck`) it also asks the store
//! whether the session is still valid, in case a notice between nodes was lost. A chat
//! whose reader loses the right to it (another officer claimed it) is left with an
//! `error` frame `forbidden` naming the room, before anything more of that chat is sent.
//!
//! One task per connection, and no queue: a single `select!` loop waits on the client's
//! frames, the joined rooms' feeds (a small list of boxed waits, empty until a room is
//! joined), one timer (the auth deadline, then the ping and dead-peer check) and the
//! shutdown (1001). Replies and events (the events' shared JSON) are written straight
//! to the socket, in order; a send the client does not take within
//! `WsSettings::slow_consumer_grace` closes the connection with 4008. While a send
//! waits, nothing else is read or polled: the bus holds the rooms' events, a chat feed
//! that lagged reads the gap from the store, and an `officers:all` subscription that
//! lagged closes with 4008. An idle connection holds its task, its socket and one
//! boxed wait per joined room.
//!
//! Abuse limits (settings in `limits`): new connections per client address (429 before
//! the upgrade), frames per connection (error frames, then 1008) and rooms per connection
//! (`too_many_rooms`).

use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chatcore::{
    Actor, ChatFeed, ChatId, Envelope, ErrorKind, LiveSession, RecvError, SessionNotice,
    Subscription, Throttle,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::{AllowedOrigin, ClientIp, parse_chat_id};
use crate::state::AppState;

/// Close code: no valid `auth` frame in time, or the session ended (logout, expiry, the
/// officer disabled).
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: the client does not read fast enough (or fell behind the queue's events).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: the client went on sending frames while over its frame limit.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: the client sent a frame or message over `WsSettings::max_message_bytes`.
pub const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_INTERNAL: u16 = 1011;

/// How long the writer tries to deliver a close frame, and the reader waits for the
/// client's close reply, before the connection is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    _origin: AllowedOrigin,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::transport(
                rejection.status(),
                "websocket_required",
                "GET /ws must be a WebSocket upgrade request",
            )
            .into_response();
        }
    };
    if state.shutdown().is_triggered() {
        return ApiError::transport(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
        .into_response();
    }
    // New connections per client address (429 with Retry-After before the upgrade).
    if let Err(e) = state.limits().ws_connect(client) {
        return e.into_response();
    }
    let guard = state.shutdown().socket_guard();
    let max = state.ws().max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(state.ws().read_buffer_bytes)
        .write_buffer_size(state.ws().write_buffer_bytes)
        .on_upgrade(move |socket| {
            // Boxed, so the connection's long-lived futures hold a pointer rather than
            // copies of the socket (an upvar keeps its space after being moved out).
            let socket = Box::new(socket);
            // Debug level: an enabled span is kept in the subscriber for the whole life
            // of the connection (about 0.13 KiB each at the default `info`); the events
            // that matter at `info` name the connection's role and subject themselves.
            let span = tracing::debug_span!(
                "ws",
                role = tracing::field::Empty,
                subject = tracing::field::Empty
            );
            async move {
                let _guard = guard;
                tracing::debug!("connected");
                run(socket, state, client).await;
                tracing::debug!("disconnected");
            }
            .instrument(span)
        })
}

/// A frame to send, or a close after the frames before it.
enum Out {
    Frame(Message),
    Close(u16, &'static str),
}

type CloseReason = (u16, &'static str);

/// How a connection ends: with a close frame (then the close handshake), or at once.
enum Ending {
    Close(CloseReason),
    Drop,
}

/// A joined room, or the officer's own events (not a room the client joined).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    Chat(ChatId),
    Queue,
    Officer,
}

/// Where a room's events come from.
enum Source {
    Chat(ChatFeed),
    Sub(Subscription),
}

/// What a room's source yielded.
enum Next {
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
struct Feed {
    room: Room,
    next: BoxFuture<'static, (Source, Next)>,
}

impl Feed {
    fn new(room: Room, source: Source) -> Self {
        Self {
            room,
            next: arm(source),
        }
    }
}

fn arm(mut source: Source) -> BoxFuture<'static, (Source, Next)> {
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

/// The connection's liveness: authenticated yet, when the peer was last heard from, when
/// the next ping is due, and how many pings until the session is checked against the
/// store again (it is checked every `WsSettings::session_recheck`, rounded to pings, so
/// that an idle connection keeps one timer and a few bytes for it).
struct Link {
    authenticated: bool,
    pings_to_recheck: u32,
    last_seen: Instant,
    next_ping: Instant,
}

/// What to do after a step.
enum Flow {
    Go,
    End(Ending),
    /// A data frame to handle (the `auth` frame, before authentication).
    Handle(Message),
    /// Ask the store whether the session is still valid.
    Recheck,
}

/// What woke the connection.
enum Step {
    Stop,
    Session(SessionNotice),
    Timer,
    Frame(Option<Result<Message, axum::Error>>),
    Event(usize, Source, Next),
}

async fn run(mut socket: Box<WebSocket>, state: AppState, client: Option<IpAddr>) {
    let frames = state.limits().ws_frames();
    let mut conn = Conn {
        state,
        session: None,
        client,
        feeds: Vec::new(),
        cursor: 0,
        out: Vec::new(),
        frames,
        refused_frames: 0,
    };
    let ending = conn.serve(&mut socket).await;
    let actor = conn.actor().clone();
    // Leaves the rooms (and stops watching the session) before the close handshake.
    drop(conn);
    if let Ending::Close(reason) = ending {
        Box::pin(close(&mut socket, reason, &actor)).await;
    }
}

/// Sends a close frame and lets the client answer it, so the TCP close is clean.
async fn close(socket: &mut WebSocket, (code, reason): CloseReason, actor: &Actor) {
    if code != CLOSE_NORMAL {
        tracing::info!(
            code,
            reason,
            role = actor.role(),
            subject = actor.subject(),
            "closing connection"
        );
    }
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    if tokio::time::timeout(CLOSE_GRACE, socket.send(frame))
        .await
        .is_ok_and(|sent| sent.is_ok())
    {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }
}

/// A client frame.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Auth {
        token: String,
    },
    JoinChat {
        #[serde(rename = "chatId")]
        chat_id: String,
        #[serde(rename = "afterSeq")]
        after_seq: Option<u64>,
    },
    JoinOfficers,
    LeaveChat {
        #[serde(rename = "chatId")]
        chat_id: String,
    },
}

/// One connection: who it is, the rooms it has joined, and the frames to send next.
struct Conn {
    state: AppState,
    /// The session, once authenticated.
    session: Option<LiveSession>,
    /// The client's address, for its budget of failed tokens.
    client: Option<IpAddr>,
    /// Joined rooms (and an officer's own events); empty, it allocates nothing.
    feeds: Vec<Feed>,
    /// Where the next poll of the feeds starts, so a busy room cannot starve the others.
    cursor: usize,
    /// Replies of the frame being handled, sent before anything else is read or polled.
    out: Vec<Out>,
    /// The connection's frame budget, and how many frames in a row it has refused.
    frames: Throttle,
    refused_frames: u32,
}

/// What to do with a client frame, by the connection's frame limit.
enum Admit {
    Handle,
    Skip,
    Close,
}

impl Conn {
    /// Serves the connection until it ends: reads client frames, forwards the rooms'
    /// events, pings, and closes on shutdown (1001). Everything is written straight to
    /// the socket; a send the client does not take within the slow-consumer grace
    /// closes the connection with 4008. While a send waits, nothing else is read or
    /// polled: the bus keeps the events, and a chat feed that lagged reads the gap from
    /// the store.
    async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
        let settings = self.state.ws();
        let grace = settings.slow_consumer_grace;
        let stopping = self.state.shutdown().triggered();
        tokio::pin!(stopping);
        // One timer: the auth deadline, then the next ping.
        let timer = tokio::time::sleep(settings.auth_timeout);
        tokio::pin!(timer);
        let now = Instant::now();
        let mut link = Link {
            authenticated: false,
            pings_to_recheck: 0,
            last_seen: now,
            next_ping: now,
        };

        loop {
            let step = {
                let (feeds, cursor, session) = (&mut self.feeds, &mut self.cursor, &self.session);
                tokio::select! {
                    biased;
                    () = &mut stopping => Step::Stop,
                    notice = poll_fn(|cx| poll_session(session.as_ref(), cx)) => Step::Session(notice),
                    () = &mut timer => Step::Timer,
                    frame = socket.next() => Step::Frame(frame),
                    (i, source, next) = poll_fn(|cx| poll_feeds(feeds, cursor, cx)) => Step::Event(i, source, next),
                }
            };
            // Handled in a plain function, so that no step is kept in this future's
            // state while it waits.
            match self.on_step(step, &mut link, timer.as_mut()) {
                Flow::Go => {}
                Flow::End(ending) => return ending,
                Flow::Handle(frame) => {
                    // Boxed: the idle state of a connection's future stays small; the
                    // handlers take their memory only while they run.
                    if link.authenticated {
                        Box::pin(self.handle(frame)).await;
                    } else if Box::pin(self.authenticate(frame)).await {
                        link.authenticated = true;
                        link.next_ping = Instant::now() + self.ping_every();
                        link.pings_to_recheck = self.pings_per_recheck();
                        self.arm_timer(&link, timer.as_mut());
                    }
                }
                Flow::Recheck => Box::pin(self.recheck()).await,
            }
            if !self.out.is_empty()
                && let Some(ending) =
                    Box::pin(send_all(socket, &mut self.out, grace, &mut stopping)).await
            {
                return ending;
            }
        }
    }

    /// The identity, `Anonymous` until authenticated.
    fn actor(&self) -> &Actor {
        static ANONYMOUS: Actor = Actor::Anonymous;
        self.session.as_ref().map_or(&ANONYMOUS, LiveSession::actor)
    }

    fn ping_every(&self) -> Duration {
        self.state.ws().ping_interval.max(Duration::from_millis(10))
    }

    /// How many pings make one `WsSettings::session_recheck` (at least one).
    fn pings_per_recheck(&self) -> u32 {
        let every = self.ping_every().as_millis().max(1);
        let pings = self.state.ws().session_recheck.as_millis().div_ceil(every);
        u32::try_from(pings).unwrap_or(u32::MAX).max(1)
    }

    /// Sets the timer to the next ping or the session's expiry, whichever comes first.
    fn arm_timer(&self, link: &Link, timer: Pin<&mut Sleep>) {
        let mut at = link.next_ping;
        if let Some(left) = self.session.as_ref().and_then(LiveSession::expires_in) {
            at = at.min(Instant::now() + left);
        }
        timer.reset(at);
    }

    /// Asks the store whether the session is still valid; closes with 4401 if not. A
    /// store that cannot answer leaves the connection open until the next check.
    async fn recheck(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        match session.recheck().await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Unauthorized => {
                self.refuse("the session has ended (logged out, expired or disabled)");
            }
            Err(e) => tracing::warn!(error = ?e, "cannot re-check a session; trying later"),
        }
    }

    /// Handles what woke the connection, short of awaiting anything: frames to send go
    /// to `out`.
    fn on_step(&mut self, step: Step, link: &mut Link, timer: Pin<&mut Sleep>) -> Flow {
        match step {
            Step::Stop => Flow::End(Ending::Close((CLOSE_GOING_AWAY, "server shutting down"))),
            Step::Session(SessionNotice::Ended) => {
                self.refuse("the session has ended (logged out, or the officer was disabled)");
                Flow::Go
            }
            Step::Session(SessionNotice::Recheck) => Flow::Recheck,
            Step::Timer if !link.authenticated => {
                self.refuse("no auth frame in time; send {\"type\":\"auth\",\"token\":...} first");
                Flow::Go
            }
            Step::Timer => {
                let now = Instant::now();
                if self
                    .session
                    .as_ref()
                    .and_then(LiveSession::expires_in)
                    .is_some_and(|left| left.is_zero())
                {
                    self.refuse("the session has expired; log in again");
                    return Flow::Go;
                }
                let mut flow = Flow::Go;
                if now >= link.next_ping {
                    let ping_every = self.ping_every();
                    if link.last_seen.elapsed() > 2 * ping_every {
                        tracing::info!(
                            role = self.actor().role(),
                            subject = self.actor().subject(),
                            "peer silent for two ping intervals; dropped"
                        );
                        return Flow::End(Ending::Drop);
                    }
                    self.out.push(Out::Frame(Message::Ping(Bytes::new())));
                    link.next_ping = now + ping_every;
                    link.pings_to_recheck = link.pings_to_recheck.saturating_sub(1);
                    if link.pings_to_recheck == 0 {
                        link.pings_to_recheck = self.pings_per_recheck();
                        flow = Flow::Recheck;
                    }
                }
                self.arm_timer(link, timer);
                flow
            }
            Step::Frame(None) => Flow::End(Ending::Drop),
            Step::Frame(Some(Err(e))) => {
                if !is_too_big(&e) {
                    tracing::debug!(error = %e, "read failed");
                    return Flow::End(Ending::Drop);
                }
                tracing::info!(error = %e, "client frame over the size limit");
                self.out.push(Out::Close(CLOSE_TOO_BIG, "message too big"));
                Flow::Go
            }
            Step::Frame(Some(Ok(frame))) => {
                // Control frames only mark the peer as alive (the socket answers pings
                // by itself; after a close frame the next read sends the reply and ends
                // the stream).
                link.last_seen = Instant::now();
                if !matches!(frame, Message::Text(_) | Message::Binary(_)) {
                    return Flow::Go;
                }
                if !link.authenticated {
                    return Flow::Handle(frame);
                }
                match self.admit_frame() {
                    Admit::Handle => Flow::Handle(frame),
                    Admit::Skip | Admit::Close => Flow::Go,
                }
            }
            Step::Event(i, source, next) => match next {
                Next::Event(envelope) => {
                    self.feeds[i].next = arm(source);
                    match Utf8Bytes::try_from(envelope.json().clone()) {
                        Ok(text) => self.out.push(Out::Frame(Message::Text(text))),
                        Err(_) => tracing::error!("event JSON is not UTF-8; dropped"),
                    }
                    Flow::Go
                }
                Next::End => {
                    self.feeds.swap_remove(i);
                    Flow::Go
                }
                Next::Failed(e) if e.kind() == ErrorKind::Forbidden => {
                    // The reader lost the chat: leave the room, and say which.
                    let room = self.feeds.swap_remove(i).room;
                    drop(source);
                    if let Room::Chat(chat) = room {
                        tracing::debug!(%chat, "left a chat the reader may no longer read");
                        let e = ApiError::from(e);
                        self.push_json(json!({
                            "type": "error",
                            "code": e.code(),
                            "message": e.message(),
                            "room": format!("chat:{chat}"),
                            "chatId": chat.to_string(),
                        }));
                    }
                    Flow::Go
                }
                Next::Failed(e) => {
                    // The client cannot tell what it missed; it reconnects and rejoins
                    // with afterSeq, which replays from the store.
                    tracing::error!(
                        error = ?e,
                        role = self.actor().role(),
                        subject = self.actor().subject(),
                        "chat feed failed"
                    );
                    Flow::End(Ending::Close((CLOSE_INTERNAL, "server error")))
                }
                Next::Lagged(missed) => {
                    // Events lost that the bus cannot give back: the client re-reads
                    // the queue when it reconnects.
                    tracing::info!(missed, "subscriber lagged; closing");
                    Flow::End(Ending::Close((CLOSE_TOO_SLOW, "client too slow")))
                }
            },
        }
    }

    fn push_json(&mut self, value: serde_json::Value) {
        self.out
            .push(Out::Frame(Message::Text(value.to_string().into())));
    }

    fn push_error(&mut self, code: &str, message: &str) {
        self.push_json(json!({ "type": "error", "code": code, "message": message }));
    }

    /// Handles the first frame; false when the connection is refused.
    async fn authenticate(&mut self, frame: Message) -> bool {
        let token = match frame {
            Message::Text(text) => match serde_json::from_str::<ClientFrame>(text.as_str()) {
                Ok(ClientFrame::Auth { token }) => token,
                _ => {
                    self.refuse("the first frame must be {\"type\":\"auth\",\"token\":...}");
                    return false;
                }
            },
            _ => {
                self.refuse("the first frame must be a JSON text frame of type auth");
                return false;
            }
        };
        let attempt = self.state.service().open_live_session(&token);
        let session = match self.state.limits().token(self.client, attempt).await {
            Ok(session) => session,
            Err(e) if e.status() == axum::http::StatusCode::UNAUTHORIZED => {
                self.refuse("the token is unknown, revoked or expired");
                return false;
            }
            Err(e) if e.retry_after_secs().is_some() => {
                // Too many failed tokens from this address: say when to retry, then close.
                self.refuse_frame(e);
                self.out
                    .push(Out::Close(CLOSE_POLICY, "too many failed tokens"));
                return false;
            }
            Err(e) => {
                self.push_error(e.code(), &e.message());
                self.out.push(Out::Close(CLOSE_INTERNAL, "server error"));
                return false;
            }
        };
        let actor = session.actor().clone();
        let span = tracing::Span::current();
        span.record("role", actor.role());
        span.record("subject", actor.subject());
        tracing::debug!("authenticated");
        self.push_json(json!({
            "type": "ready",
            "role": actor.role(),
            "subject": actor.subject(),
        }));
        // An officer hears of chats assigned to them without joining anything.
        if matches!(actor, Actor::Officer(_)) {
            match self.state.service().watch_officer(&actor) {
                Ok(subscription) => self.add(Feed::new(Room::Officer, Source::Sub(subscription))),
                Err(e) => tracing::error!(error = ?e, "cannot watch officer events"),
            }
        }
        self.session = Some(session);
        true
    }

    /// Counts a frame against the connection's limit. A frame over it is answered with a
    /// `rate_limited` error frame and not handled; a client that sends as many frames
    /// again as the limit allows at once, all refused, is not listening and is closed
    /// with 1008.
    fn admit_frame(&mut self) -> Admit {
        let Err(e) = self.frames.check() else {
            self.refused_frames = 0;
            return Admit::Handle;
        };
        self.refused_frames = self.refused_frames.saturating_add(1);
        self.refuse_frame(e.into());
        let allowed = self
            .state
            .limits()
            .settings()
            .ws_frames_per_connection
            .map_or(u32::MAX, |rate| rate.count());
        if self.refused_frames >= allowed {
            tracing::info!("frame limit grossly exceeded; closing");
            self.out
                .push(Out::Close(CLOSE_POLICY, "frame rate limit exceeded"));
            return Admit::Close;
        }
        Admit::Skip
    }

    /// Rooms joined now: chats, and the officers' queue.
    fn rooms(&self) -> usize {
        self.feeds
            .iter()
            .filter(|feed| feed.room != Room::Officer)
            .count()
    }

    fn joined(&self, room: Room) -> bool {
        self.feeds.iter().any(|feed| feed.room == room)
    }

    /// Adds a room, growing the list by exactly one (a connection is mostly in one room
    /// or two; `Vec::push` would make room for four).
    fn add(&mut self, feed: Feed) {
        self.feeds.reserve_exact(1);
        self.feeds.push(feed);
    }

    /// Leaves a room: its source is dropped, so nothing of it is sent after this.
    fn leave(&mut self, room: Room) {
        self.feeds.retain(|feed| feed.room != room);
        self.feeds.shrink_to_fit();
    }

    /// Refuses a join that would take the connection over its room limit.
    fn over_room_limit(&mut self, already_joined: bool) -> bool {
        let max = self.state.limits().settings().ws_rooms_per_connection;
        if already_joined || self.rooms() < max {
            return false;
        }
        self.push_error(
            "too_many_rooms",
            &format!("at most {max} rooms per connection; leave one before joining another"),
        );
        true
    }

    fn refuse(&mut self, message: &str) {
        tracing::debug!("authentication refused");
        self.push_error("unauthorized", message);
        self.out
            .push(Out::Close(CLOSE_UNAUTHORIZED, "unauthorized"));
    }

    async fn handle(&mut self, frame: Message) {
        let Message::Text(text) = frame else {
            self.push_error("invalid_frame", "frames must be JSON text frames");
            return;
        };
        let frame = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) => frame,
            Err(e) => {
                let message = format!("not a valid client frame: {e}");
                self.push_error("invalid_frame", &message);
                return;
            }
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.push_error("invalid_frame", "this connection is already authenticated");
            }
            ClientFrame::JoinChat { chat_id, after_seq } => {
                self.join_chat(&chat_id, after_seq).await
            }
            ClientFrame::JoinOfficers => self.join_officers(),
            ClientFrame::LeaveChat { chat_id } => self.leave_chat(&chat_id),
        }
    }

    async fn join_chat(&mut self, chat_id: &str, after_seq: Option<u64>) {
        let chat = match parse_chat_id(chat_id) {
            Ok(chat) => chat,
            Err(e) => return self.refuse_frame(e),
        };
        let room = Room::Chat(chat);
        if self.over_room_limit(self.joined(room)) {
            return;
        }
        // Rights are checked by the service on every join.
        let feed = match self
            .state
            .service()
            .watch_chat(self.actor(), chat, after_seq)
            .await
        {
            Ok(feed) => feed,
            Err(e) => return self.refuse_frame(e.into()),
        };
        // Joining again replaces the earlier feed: nothing of it follows the `joined`.
        self.leave(room);
        self.push_json(json!({ "type": "joined", "room": format!("chat:{chat}") }));
        tracing::debug!(%chat, after_seq, "joined chat");
        self.add(Feed::new(room, Source::Chat(feed)));
    }

    fn join_officers(&mut self) {
        if self.over_room_limit(self.joined(Room::Queue)) {
            return;
        }
        let subscription = match self.state.service().watch_queue(self.actor()) {
            Ok(subscription) => subscription,
            Err(e) => return self.refuse_frame(e.into()),
        };
        self.leave(Room::Queue);
        self.push_json(json!({ "type": "joined", "room": "officers:all" }));
        self.add(Feed::new(Room::Queue, Source::Sub(subscription)));
    }

    fn leave_chat(&mut self, chat_id: &str) {
        let chat = match parse_chat_id(chat_id) {
            Ok(chat) => chat,
            Err(e) => return self.refuse_frame(e),
        };
        self.leave(Room::Chat(chat));
        self.push_json(json!({ "type": "left", "room": format!("chat:{chat}") }));
    }

    fn refuse_frame(&mut self, e: ApiError) {
        if e.status().is_server_error() {
            tracing::error!(
                error = ?e,
                role = self.actor().role(),
                subject = self.actor().subject(),
                "frame failed"
            );
        }
        match e.retry_after_secs() {
            // A rate limit also says when to retry, as REST's `Retry-After` does.
            Some(secs) => self.push_json(json!({
                "type": "error",
                "code": e.code(),
                "message": e.message(),
                "retryAfter": secs,
            })),
            None => self.push_error(e.code(), &e.message()),
        };
    }
}

/// Whether the session has news; pending before authentication.
fn poll_session(session: Option<&LiveSession>, cx: &mut Context<'_>) -> Poll<SessionNotice> {
    session.map_or(Poll::Pending, |s| s.poll_notice(cx))
}

/// The next event of any joined room, starting at the cursor (so a busy room cannot
/// starve the others).
fn poll_feeds(
    feeds: &mut [Feed],
    cursor: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<(usize, Source, Next)> {
    let len = feeds.len();
    for k in 0..len {
        let i = (*cursor + k) % len;
        if let Poll::Ready((source, next)) = feeds[i].next.as_mut().poll(cx) {
            *cursor = i + 1;
            return Poll::Ready((i, source, next));
        }
    }
    Poll::Pending
}

/// Sends the frames in order (and frees the list). A close ends the connection after
/// the frames before it; so does a send the client does not take within `grace`
/// (4008), a failed send, or the shutdown (1001).
async fn send_all(
    socket: &mut WebSocket,
    out: &mut Vec<Out>,
    grace: Duration,
    stopping: &mut Pin<&mut impl Future<Output = ()>>,
) -> Option<Ending> {
    for item in std::mem::take(out) {
        let frame = match item {
            Out::Frame(frame) => frame,
            Out::Close(code, reason) => return Some(Ending::Close((code, reason))),
        };
        let sent = tokio::select! {
            biased;
            () = stopping.as_mut() => return Some(Ending::Close((CLOSE_GOING_AWAY, "server shutting down"))),
            sent = tokio::time::timeout(grace, socket.send(frame)) => sent,
        };
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "send failed");
                return Some(Ending::Drop);
            }
            Err(_elapsed) => return Some(Ending::Close((CLOSE_TOO_SLOW, "client too slow"))),
        }
    }
    None
}

/// Whether a read failed because the client's frame or message was over the limit.
fn is_too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}
