//! One WebSocket connection's loop: the `auth` frame and the session it opens (closed
//! with 4401 when the session ends or expires, re-checked against the store now and
//! then), the timers (auth deadline, pings, dead peer), client frames under the
//! connection's frame limit, and what each wake-up of the loop leads to. The session,
//! rooms, feeds and budgets are the shared layer's (`crate::live`); this file only
//! turns frames into its requests and its answers and events into frames. The writes
//! are in `super::send_all`.

use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use chatcore::wire::{ClientFrame, ErrorFrame, ServerFrame};
use chatcore::{Actor, SessionNotice};
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};

use super::{
    CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED, Ending, Out, is_too_big, send_all,
};
use crate::error::ApiError;
use crate::live::{Happening, Live, Refused, Reply, poll_session};

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
    Event(Happening),
}

/// One connection: its session and rooms (the shared layer), and the frames to send next.
pub(super) struct Conn {
    pub(super) live: Live,
    /// The client's address, for its budget of failed tokens: kept until the `auth`
    /// frame has been judged, boxed so that it costs a pointer.
    pub(super) client: Option<Box<IpAddr>>,
    /// Replies of the frame being handled, sent before anything else is read or polled.
    pub(super) out: Vec<Out>,
}

impl Conn {
    /// Serves the connection until it ends: reads client frames, forwards the rooms'
    /// events, pings, and closes on shutdown (1001). Everything is written straight to
    /// the socket; a send the client does not take within the slow-consumer grace
    /// closes the connection with 4008. While a send waits, nothing else is read or
    /// polled: the bus keeps the events, and a chat feed that lagged reads the gap from
    /// the store.
    pub(super) async fn serve(&mut self, socket: &mut WebSocket) -> Ending {
        let settings = self.live.state().ws();
        let grace = settings.slow_consumer_grace;
        let stopping = self.live.state().shutdown().triggered();
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
                let (session, rooms) = self.live.waits();
                tokio::select! {
                    biased;
                    () = &mut stopping => Step::Stop,
                    notice = poll_fn(|cx| poll_session(session, cx)) => Step::Session(notice),
                    () = &mut timer => Step::Timer,
                    frame = socket.next() => Step::Frame(frame),
                    happening = poll_fn(|cx| rooms.poll_event(cx)) => Step::Event(happening),
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
            let Poll::Ready(happening) = self.live.poll_event(cx) else {
                return None;
            };
            if let Flow::End(ending) = self.on_step(Step::Event(happening), link, timer.as_mut()) {
                return Some(ending);
            }
        }
        None
    }

    /// The identity, `Anonymous` until authenticated.
    pub(super) fn actor(&self) -> &Actor {
        self.live.actor()
    }

    fn ping_every(&self) -> Duration {
        self.live
            .state()
            .ws()
            .ping_interval
            .max(Duration::from_millis(10))
    }

    /// How many pings make at most one `WsSettings::session_recheck` (at least one), so
    /// that a session is checked at least that often (every 50 s with the defaults).
    fn pings_per_recheck(&self) -> u32 {
        let every = self.ping_every().as_millis().max(1);
        let pings = self.live.state().ws().session_recheck.as_millis() / every;
        u32::try_from(pings).unwrap_or(u32::MAX).max(1)
    }

    /// Sets the timer to the next ping or the session's expiry, whichever comes first.
    fn arm_timer(&self, link: &Link, timer: Pin<&mut Sleep>) {
        let mut at = link.next_ping;
        if let Some(left) = self.live.expires_in() {
            at = at.min(Instant::now() + left);
        }
        timer.reset(at);
    }

    /// Asks the store whether the session is still valid; closes with 4401 if not. A
    /// store that cannot answer leaves the connection open until the next check.
    async fn recheck(&mut self) {
        if !self.live.recheck().await {
            self.refuse("the session has ended (logged out, expired or disabled)");
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
                if self.live.expires_in().is_some_and(|left| left.is_zero()) {
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
                // A frame over the budget is answered with a `rate_limited` error frame
                // and not handled; a client that is not listening is closed with 1008.
                match self.live.admit() {
                    Ok(()) => Flow::Handle(frame),
                    Err(over) => {
                        self.refuse_frame(over.error);
                        if over.close {
                            self.out
                                .push(Out::Close(CLOSE_POLICY, "frame rate limit exceeded"));
                        }
                        Flow::Go
                    }
                }
            }
            Step::Event(happening) => match happening {
                Happening::Event(envelope) => {
                    match Utf8Bytes::try_from(envelope.json().clone()) {
                        Ok(text) => self.out.push(Out::Frame(Message::Text(text))),
                        Err(_) => tracing::error!("event JSON is not UTF-8; dropped"),
                    }
                    Flow::Go
                }
                Happening::Lost(frame) => {
                    self.push_frame(&frame);
                    Flow::Go
                }
                // The client cannot tell what it missed; it reconnects and rejoins with
                // afterSeq, which replays from the store.
                Happening::Failed => Flow::End(Ending::Close((CLOSE_INTERNAL, "server error"))),
                // Events lost that the bus cannot give back: the client re-reads the
                // queue when it reconnects.
                Happening::Lagged => Flow::End(Ending::Close((CLOSE_TOO_SLOW, "client too slow"))),
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
        let client = self.client.take().map(|ip| *ip);
        let ready = match self.live.open(&token, client).await {
            Ok(ready) => ready,
            Err(Refused::Unauthorized) => {
                self.refuse("the token is unknown, revoked or expired");
                return false;
            }
            Err(Refused::Limited(e)) => {
                // Too many failed tokens from this address: say when to retry, then close.
                self.refuse_frame(e);
                self.out
                    .push(Out::Close(CLOSE_POLICY, "too many failed tokens"));
                return false;
            }
            Err(Refused::Failed(e)) => {
                self.push_error(e.code(), &e.message());
                self.out.push(Out::Close(CLOSE_INTERNAL, "server error"));
                return false;
            }
        };
        let actor = self.live.actor();
        let span = tracing::Span::current();
        span.record("role", actor.role());
        span.record("subject", actor.subject());
        tracing::debug!("authenticated");
        self.push_frame(&ready);
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
        match self.live.request(frame).await {
            Ok(Reply::Joined(room)) => self.push_frame(&ServerFrame::Joined { room }),
            Ok(Reply::Left(room)) => self.push_frame(&ServerFrame::Left { room }),
            Ok(Reply::Done) => {}
            Err(e) => self.refuse_frame(e),
        }
    }

    pub(super) fn refuse_frame(&mut self, e: ApiError) {
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
