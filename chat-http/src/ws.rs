//! The WebSocket endpoint `GET /ws`: authenticate with the first frame, then forward the
//! rooms a client joins (a chat's messages, the officers' queue) and an officer's own
//! events. It must not decide who may join what (`ChatService` checks that on every
//! join) nor re-order, re-serialize or buffer events without bound.
//!
//! Per connection: this task reads the socket, one spawned task writes it, and one
//! forwarder task per room pushes the events' shared JSON into a single bounded queue
//! the writer drains. A queue that fills up (a client not reading) closes the connection
//! with 4008; when the reader or the writer ends, the other ends too.
//!
//! Abuse limits (settings in `limits`): new connections per client address (429 before
//! the upgrade), frames per connection (error frames, then 1008) and rooms per connection
//! (`too_many_rooms`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chatcore::{Actor, ChatFeed, ChatId, RecvError, Subscription, Throttle};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::{ClientIp, parse_chat_id};
use crate::shutdown::Shutdown;
use crate::state::AppState;

/// Close code: no valid `auth` frame in time.
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
            let span = tracing::info_span!(
                "ws",
                role = tracing::field::Empty,
                subject = tracing::field::Empty
            );
            async move {
                let _guard = guard;
                tracing::debug!("connected");
                run(socket, state).await;
                tracing::debug!("disconnected");
            }
            .instrument(span)
        })
}

/// A frame for the writer: a data frame, or a close after everything queued before it.
enum Out {
    Frame(Message),
    Close(u16, &'static str),
}

type CloseReason = (u16, &'static str);

/// The sending side shared by the reader and the room forwarders.
#[derive(Clone)]
struct Outbox {
    queue: mpsc::Sender<Out>,
    /// Set to close the connection at once, ahead of anything queued.
    kill: Arc<watch::Sender<Option<CloseReason>>>,
    /// How long a room event may wait for space before the client counts as too slow.
    grace: Duration,
}

impl Outbox {
    /// Queues a frame; false when the connection is closing. A full queue means the
    /// client is not keeping up: the connection is closed with 4008 rather than
    /// buffering more.
    fn push(&self, frame: Message) -> bool {
        match self.queue.try_send(Out::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill(CLOSE_TOO_SLOW, "client too slow");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues an event's JSON, waiting for space: a client that reads (a long replay, a
    /// burst) is served at its own pace with bounded memory; one that leaves the queue
    /// full for the whole grace period is not keeping up and is closed with 4008.
    async fn push_event(&self, json: &Bytes) -> bool {
        let Ok(text) = Utf8Bytes::try_from(json.clone()) else {
            tracing::error!("event JSON is not UTF-8; dropped");
            return true;
        };
        match tokio::time::timeout(self.grace, self.queue.send(Out::Frame(Message::Text(text))))
            .await
        {
            Ok(Ok(())) => true,
            Ok(Err(_closed)) => false,
            Err(_elapsed) => {
                self.kill(CLOSE_TOO_SLOW, "client too slow");
                false
            }
        }
    }

    fn push_json(&self, value: serde_json::Value) -> bool {
        self.push(Message::Text(value.to_string().into()))
    }

    fn push_error(&self, code: &str, message: &str) -> bool {
        self.push_json(json!({ "type": "error", "code": code, "message": message }))
    }

    /// Queues a close frame after what is already queued.
    fn close_after_queued(&self, code: u16, reason: &'static str) {
        if self.queue.try_send(Out::Close(code, reason)).is_err() {
            self.kill(code, reason);
        }
    }

    /// Closes the connection now; the first reason given wins.
    fn kill(&self, code: u16, reason: &'static str) {
        self.kill.send_if_modified(|current| {
            if current.is_none() {
                *current = Some((code, reason));
                true
            } else {
                false
            }
        });
    }
}

/// When the peer was last heard from (any frame, pongs included).
struct LastSeen {
    start: Instant,
    millis: AtomicU64,
}

impl LastSeen {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.millis.store(now, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.millis.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

async fn run(socket: Box<WebSocket>, state: AppState) {
    let (sink, mut stream) = (*socket).split();
    let (queue, queue_rx) = mpsc::channel(state.ws().outbound_capacity.max(1));
    let kill = Arc::new(watch::Sender::new(None));
    let last_seen = Arc::new(LastSeen::new());
    let outbox = Outbox {
        queue,
        kill: kill.clone(),
        grace: state.ws().slow_consumer_grace,
    };
    let mut writer = tokio::spawn(
        write_loop(
            sink,
            queue_rx,
            kill,
            state.shutdown().clone(),
            state.ws().ping_interval,
            last_seen.clone(),
        )
        .in_current_span(),
    );

    let frames = state.limits().ws_frames();
    let mut session = Session {
        state,
        out: outbox,
        actor: Actor::Anonymous,
        chats: HashMap::new(),
        queue: None,
        officer: None,
        frames,
        refused_frames: 0,
    };
    let writer_done = tokio::select! {
        () = session.read_loop(&mut stream, &last_seen) => false,
        _ = &mut writer => true,
    };
    // Stops the forwarders and drops the last queue senders, so the writer, if still
    // running, drains what is queued (an error frame, a close) and ends.
    drop(session);
    if !writer_done
        && tokio::time::timeout(2 * CLOSE_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    // Let the client answer our close frame, so the TCP close is clean.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

/// Sends queued frames and pings; closes on shutdown (1001), on a kill (4008 ...), and
/// drops a peer silent for two ping intervals.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Out>,
    // The writer holds a sender too, so the receiver never sees the channel closed.
    kill: Arc<watch::Sender<Option<CloseReason>>>,
    shutdown: Shutdown,
    ping_every: Duration,
    last_seen: Arc<LastSeen>,
) {
    enum Step {
        Send(Message),
        Close(CloseReason),
        Drop,
    }
    let ping_every = ping_every.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopping = shutdown.triggered();
    tokio::pin!(stopping);
    let mut kill = kill.subscribe();

    loop {
        let step = tokio::select! {
            biased;
            () = &mut stopping => Step::Close((CLOSE_GOING_AWAY, "server shutting down")),
            reason = kill.wait_for(Option::is_some) => match reason {
                Ok(reason) => Step::Close(reason.unwrap_or((CLOSE_NORMAL, ""))),
                Err(_) => Step::Drop,
            },
            out = queue.recv() => match out {
                Some(Out::Frame(frame)) => Step::Send(frame),
                Some(Out::Close(code, reason)) => Step::Close((code, reason)),
                None => Step::Close((CLOSE_NORMAL, "")),
            },
            _ = ticker.tick() => {
                if last_seen.silent_for() > 2 * ping_every {
                    tracing::info!("peer silent for two ping intervals; dropped");
                    Step::Drop
                } else {
                    Step::Send(Message::Ping(Bytes::new()))
                }
            }
        };
        let frame = match step {
            Step::Send(frame) => frame,
            Step::Close(reason) => {
                close(&mut sink, reason).await;
                return;
            }
            Step::Drop => return,
        };
        // A client that stops reading blocks this send; a kill or a shutdown must still
        // get through, and a peer stuck for two ping intervals is dead.
        let outcome = tokio::select! {
            biased;
            () = &mut stopping => Some(Step::Close((CLOSE_GOING_AWAY, "server shutting down"))),
            reason = kill.wait_for(Option::is_some) => Some(match reason {
                Ok(reason) => Step::Close(reason.unwrap_or((CLOSE_NORMAL, ""))),
                Err(_) => Step::Drop,
            }),
            () = tokio::time::sleep(2 * ping_every) => Some(Step::Drop),
            sent = sink.send(frame) => sent.is_err().then_some(Step::Drop),
        };
        match outcome {
            None => {}
            Some(Step::Close(reason)) => {
                close(&mut sink, reason).await;
                return;
            }
            Some(_) => return,
        }
    }
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, (code, reason): CloseReason) {
    if code != CLOSE_NORMAL {
        tracing::info!(code, reason, "closing connection");
    }
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(frame)).await;
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

/// A task that is aborted when this is dropped.
struct Forwarder(JoinHandle<()>);

impl Forwarder {
    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Forwarder(tokio::spawn(task.in_current_span()))
    }

    /// Stops the task and waits until it has stopped, so nothing it had in hand is
    /// queued after what the caller queues next.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The reading side of one connection and the rooms it has joined.
struct Session {
    state: AppState,
    out: Outbox,
    actor: Actor,
    chats: HashMap<ChatId, Forwarder>,
    queue: Option<Forwarder>,
    officer: Option<Forwarder>,
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

impl Session {
    async fn read_loop(&mut self, stream: &mut SplitStream<WebSocket>, last_seen: &LastSeen) {
        let auth_timeout = self.state.ws().auth_timeout;
        let read = next_data_frame(stream, last_seen, &self.out);
        match tokio::time::timeout(auth_timeout, read).await {
            Err(_) => {
                self.refuse("no auth frame in time; send {\"type\":\"auth\",\"token\":...} first");
                return;
            }
            Ok(None) => return,
            Ok(Some(frame)) => {
                // Boxed: the idle state of a connection's future stays small, and the
                // rarely running handlers take their memory only while they run.
                if !Box::pin(self.authenticate(frame)).await {
                    return;
                }
            }
        }
        while let Some(frame) = next_data_frame(stream, last_seen, &self.out).await {
            match self.admit_frame() {
                Admit::Handle => {}
                Admit::Skip => continue,
                Admit::Close => return,
            }
            match frame {
                Message::Text(text) => Box::pin(self.handle(text.as_str())).await,
                _ => {
                    self.out
                        .push_error("invalid_frame", "frames must be JSON text frames");
                }
            }
        }
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
        let actor = match self.state.service().authenticate(&token).await {
            Ok(auth) => auth.actor,
            Err(e) if e.kind() == chatcore::ErrorKind::Unauthorized => {
                self.refuse("the token is unknown, revoked or expired");
                return false;
            }
            Err(e) => {
                let e = ApiError::from(e);
                self.out.push_error(e.code(), &e.message());
                self.out.close_after_queued(CLOSE_INTERNAL, "server error");
                return false;
            }
        };
        let span = tracing::Span::current();
        span.record("role", actor.role());
        span.record("subject", actor.subject());
        tracing::debug!("authenticated");
        self.out.push_json(json!({
            "type": "ready",
            "role": actor.role(),
            "subject": actor.subject(),
        }));
        // An officer hears of chats assigned to them without joining anything.
        if matches!(actor, Actor::Officer(_)) {
            match self.state.service().watch_officer(&actor) {
                Ok(subscription) => {
                    self.officer = Some(Forwarder::spawn(forward_subscription(
                        subscription,
                        self.out.clone(),
                    )));
                }
                Err(e) => tracing::error!(error = ?e, "cannot watch officer events"),
            }
        }
        self.actor = actor;
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
                .close_after_queued(CLOSE_POLICY, "frame rate limit exceeded");
            return Admit::Close;
        }
        Admit::Skip
    }

    /// Rooms joined now: chats, and the officers' queue.
    fn rooms(&self) -> usize {
        self.chats.len() + usize::from(self.queue.is_some())
    }

    /// Refuses a join that would take the connection over its room limit.
    fn over_room_limit(&self, already_joined: bool) -> bool {
        let max = self.state.limits().settings().ws_rooms_per_connection;
        if already_joined || self.rooms() < max {
            return false;
        }
        self.out.push_error(
            "too_many_rooms",
            &format!("at most {max} rooms per connection; leave one before joining another"),
        );
        true
    }

    fn refuse(&self, message: &str) {
        tracing::debug!("authentication refused");
        self.out.push_error("unauthorized", message);
        self.out
            .close_after_queued(CLOSE_UNAUTHORIZED, "unauthorized");
    }

    async fn handle(&mut self, text: &str) {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let message = format!("not a valid client frame: {e}");
                self.out.push_error("invalid_frame", &message);
                return;
            }
        };
        match frame {
            ClientFrame::Auth { .. } => {
                self.out
                    .push_error("invalid_frame", "this connection is already authenticated");
            }
            ClientFrame::JoinChat { chat_id, after_seq } => {
                self.join_chat(&chat_id, after_seq).await
            }
            ClientFrame::JoinOfficers => self.join_officers().await,
            ClientFrame::LeaveChat { chat_id } => self.leave_chat(&chat_id).await,
        }
    }

    async fn join_chat(&mut self, chat_id: &str, after_seq: Option<u64>) {
        let chat = match parse_chat_id(chat_id) {
            Ok(chat) => chat,
            Err(e) => return self.refuse_frame(e),
        };
        if self.over_room_limit(self.chats.contains_key(&chat)) {
            return;
        }
        // Rights are checked by the service on every join.
        let feed = match self
            .state
            .service()
            .watch_chat(&self.actor, chat, after_seq)
            .await
        {
            Ok(feed) => feed,
            Err(e) => return self.refuse_frame(e.into()),
        };
        // Joining again replaces the earlier feed, which must be fully stopped first so
        // that nothing of it follows the new `joined`.
        if let Some(old) = self.chats.remove(&chat) {
            old.stop().await;
        }
        if !self
            .out
            .push_json(json!({ "type": "joined", "room": format!("chat:{chat}") }))
        {
            return;
        }
        tracing::debug!(%chat, after_seq, "joined chat");
        self.chats
            .insert(chat, Forwarder::spawn(forward_chat(feed, self.out.clone())));
    }

    async fn join_officers(&mut self) {
        if self.over_room_limit(self.queue.is_some()) {
            return;
        }
        let subscription = match self.state.service().watch_queue(&self.actor) {
            Ok(subscription) => subscription,
            Err(e) => return self.refuse_frame(e.into()),
        };
        if let Some(old) = self.queue.take() {
            old.stop().await;
        }
        if !self
            .out
            .push_json(json!({ "type": "joined", "room": "officers:all" }))
        {
            return;
        }
        self.queue = Some(Forwarder::spawn(forward_subscription(
            subscription,
            self.out.clone(),
        )));
    }

    async fn leave_chat(&mut self, chat_id: &str) {
        let chat = match parse_chat_id(chat_id) {
            Ok(chat) => chat,
            Err(e) => return self.refuse_frame(e),
        };
        if let Some(old) = self.chats.remove(&chat) {
            old.stop().await;
        }
        self.out
            .push_json(json!({ "type": "left", "room": format!("chat:{chat}") }));
    }

    fn refuse_frame(&self, e: ApiError) {
        if e.status().is_server_error() {
            tracing::error!(error = ?e, "frame failed");
        }
        match e.retry_after_secs() {
            // A rate limit also says when to retry, as REST's `Retry-After` does.
            Some(secs) => self.out.push_json(json!({
                "type": "error",
                "code": e.code(),
                "message": e.message(),
                "retryAfter": secs,
            })),
            None => self.out.push_error(e.code(), &e.message()),
        };
    }
}

/// The next text or binary frame; `None` when the connection has ended. Control frames
/// only mark the peer as alive (the socket answers pings by itself); after a close
/// frame the next read sends the reply and ends the stream. A frame or message over the
/// size limit ends the connection with 1009.
async fn next_data_frame(
    stream: &mut SplitStream<WebSocket>,
    last_seen: &LastSeen,
    out: &Outbox,
) -> Option<Message> {
    loop {
        let frame = match stream.next().await? {
            Ok(frame) => frame,
            Err(e) => {
                if is_too_big(&e) {
                    tracing::info!(error = %e, "client frame over the size limit");
                    out.close_after_queued(CLOSE_TOO_BIG, "message too big");
                } else {
                    tracing::debug!(error = %e, "read failed");
                }
                return None;
            }
        };
        last_seen.touch();
        match frame {
            Message::Text(_) | Message::Binary(_) => return Some(frame),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
        }
    }
}

/// Whether a read failed because the client's frame or message was over the limit.
fn is_too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// Forwards a chat's messages: replayed ones, then live ones, in seq order.
async fn forward_chat(mut feed: ChatFeed, out: Outbox) {
    loop {
        match feed.next_event().await {
            Ok(Some(envelope)) => {
                if !out.push_event(envelope.json()).await {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                // The client cannot tell what it missed; it reconnects and rejoins
                // with afterSeq, which replays from the store.
                tracing::error!(error = ?e, chat = %feed.chat_id(), "chat feed failed");
                out.kill(CLOSE_INTERNAL, "server error");
                return;
            }
        }
    }
}

/// Forwards the queue's or an officer's events. A subscriber that lagged has lost
/// events it cannot get back from the bus: it is closed with 4008 and re-reads the
/// queue when it reconnects.
async fn forward_subscription(mut subscription: Subscription, out: Outbox) {
    loop {
        match subscription.recv().await {
            Ok(envelope) => {
                if !out.push_event(envelope.json()).await {
                    return;
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(missed, "subscriber lagged; closing");
                out.kill(CLOSE_TOO_SLOW, "client too slow");
                return;
            }
            Err(RecvError::Closed) => return,
        }
    }
}
