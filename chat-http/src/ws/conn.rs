//! One WebSocket connection's loop: the `auth` frame and the session it opens (closed
//! with 4401 when the session ends or expires, re-checked against the store now and
//! then), the timers (auth deadline, pings, dead peer), client frames under the
//! connection's frame limit, and what each wake-up of the loop leads to. Rooms and their
//! feeds are in `rooms`; the writes in `super::send_all`.

use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use chatcore::wire::{ClientFrame, ErrorFrame, ServerFrame};
use chatcore::{Actor, ErrorKind, LiveSession, SessionNotice, Throttle};
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};

use super::rooms::{Feed, Next, Room, Source, arm, poll_feeds};
use super::{
    CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED, Ending, Out, is_too_big, send_all,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Events written together at most, when several wait: enough to make a burst one
/// write, few enough that frames from the client are not kept waiting.
const READY_EVENTS_PER_WRITE: usize = 16;

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

/// One connection: who it is, the rooms it has joined, and the frames to send next.
pub(super) struct Conn {
    pub(super) state: AppState,
    /// The session, once authenticated.
    pub(super) session: Option<LiveSession>,
    /// The client's address, for its budget of failed tokens: kept until the `auth`
    /// frame has been judged, boxed so that it costs a pointer.
    pub(super) client: Option<Box<IpAddr>>,
    /// Joined rooms (and an officer's own events); empty, it allocates nothing.
    pub(super) feeds: Vec<Feed>,
    /// Where the next poll of the feeds starts, so a busy room cannot starve the others.
    pub(super) cursor: u32,
    /// Replies of the frame being handled, sent before anything else is read or polled.
    pub(super) out: Vec<Out>,
    /// The connection's frame budget, and how many frames in a row it has refused.
    pub(super) frames: Throttle,
    pub(super) refused_frames: u32,
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
    pub(super) async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
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
            // Events already waiting go out with these frames, in one write.
            if !self.out.is_empty()
                && let Some(ending) =
                    poll_fn(|cx| Poll::Ready(self.take_ready_events(cx, &mut link, timer.as_mut())))
                        .await
            {
                return ending;
            }
            if !self.out.is_empty()
                && let Some(ending) =
                    Box::pin(send_all(socket, &mut self.out, grace, &mut stopping)).await
            {
                return ending;
            }
        }
    }

    /// Handles up to [`READY_EVENTS_PER_WRITE`] more events that wait in the rooms' feeds
    /// without waiting for any, so that a burst (a message behind a `typing`, say) is
    /// written and flushed once rather than once per event.
    fn take_ready_events(
        &mut self,
        cx: &mut Context<'_>,
        link: &mut Link,
        mut timer: Pin<&mut Sleep>,
    ) -> Option<Ending> {
        for _ in 0..READY_EVENTS_PER_WRITE {
            // Polled with the task's own context, so that a feed with nothing keeps
            // waking this task.
            let Poll::Ready((i, source, next)) = poll_feeds(&mut self.feeds, &mut self.cursor, cx)
            else {
                return None;
            };
            if let Flow::End(ending) =
                self.on_step(Step::Event(i, source, next), link, timer.as_mut())
            {
                return Some(ending);
            }
        }
        None
    }

    /// The identity, `Anonymous` until authenticated.
    pub(super) fn actor(&self) -> &Actor {
        static ANONYMOUS: Actor = Actor::Anonymous;
        self.session.as_ref().map_or(&ANONYMOUS, LiveSession::actor)
    }

    fn ping_every(&self) -> Duration {
        self.state.ws().ping_interval.max(Duration::from_millis(10))
    }

    /// How many pings make at most one `WsSettings::session_recheck` (at least one), so
    /// that a session is checked at least that often (every 50 s with the defaults).
    fn pings_per_recheck(&self) -> u32 {
        let every = self.ping_every().as_millis().max(1);
        let pings = self.state.ws().session_recheck.as_millis() / every;
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
                        self.push_frame(&ServerFrame::Error(ErrorFrame {
                            room: Some(format!("chat:{chat}")),
                            chat_id: Some(chat.to_string()),
                            ..ErrorFrame::new(e.code(), e.message())
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

    pub(super) fn push_frame(&mut self, frame: &ServerFrame) {
        self.out
            .push(Out::Frame(Message::Text(frame.to_json().into())));
    }

    pub(super) fn push_error(&mut self, code: &str, message: &str) {
        self.push_frame(&ServerFrame::Error(ErrorFrame::new(code, message)));
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
        let client = self.client.take().map(|ip| *ip);
        let session = match self.state.limits().token(client, attempt).await {
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
        self.push_frame(&ServerFrame::Ready {
            role: actor.role().to_string(),
            subject: actor.subject().to_string(),
        });
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
        let clock = self.state.service().config().clock.as_ref();
        let Err(e) = self.frames.check(clock) else {
            self.refused_frames = 0;
            return Admit::Handle;
        };
        self.refused_frames = self.refused_frames.saturating_add(1);
        crate::metrics::rate_limited(crate::metrics::limit::WS_FRAMES);
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
            ClientFrame::Typing { chat_id } => self.typing(&chat_id).await,
            ClientFrame::Read { chat_id, seq } => self.read(&chat_id, seq).await,
        }
    }

    pub(super) fn refuse_frame(&mut self, e: ApiError) {
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
            Some(secs) => self.push_frame(&ServerFrame::Error(ErrorFrame {
                retry_after: Some(secs),
                ..ErrorFrame::new(e.code(), e.message())
            })),
            None => self.push_error(e.code(), &e.message()),
        };
    }
}

/// Whether the session has news; pending before authentication.
fn poll_session(session: Option<&LiveSession>, cx: &mut Context<'_>) -> Poll<SessionNotice> {
    session.map_or(Poll::Pending, |s| s.poll_notice(cx))
}
