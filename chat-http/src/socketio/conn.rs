//! One Socket.IO connection's task: the shared layer's session and rooms (`crate::live`),
//! the client's events in the order they came (each acknowledged), the rooms' events
//! emitted under their `type`, the session's end (logout, a disabled officer, expiry,
//! a re-check against the store now and then) and the shutdown. One task and no queue
//! of its own: an event waits in the bus (or, for a chat, in the store) until the
//! client's buffer in socketioxide has room, and a client that leaves it full for
//! `WsSettings::slow_consumer_grace` is disconnected (`/ws`'s 4008): on a WebSocket,
//! by killing its connection, since no packet fits any more. A long-polling session
//! gives its slot under the connection caps back once it is upgraded.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use chatcore::SessionNotice;
use chatcore::wire::{ClientFrame, ErrorFrame, ServerFrame};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::{SendError, SocketError, TransportType};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::conn::Kill;
use crate::error::ApiError;
use crate::live::{Happening, Live, Reply, poll_session};
use crate::shutdown::SocketGuard;

/// How often a send that found the client's buffer full looks again.
const ROOM_CHECK: Duration = Duration::from_millis(10);

/// When a long-polling session first looks whether it was upgraded, and the longest
/// it waits between looks (the wait doubles).
const UPGRADE_CHECK_FIRST: Duration = Duration::from_millis(50);
const UPGRADE_CHECK_LAST: Duration = Duration::from_secs(30);

/// A client event for the connection's task.
pub(super) struct Command {
    pub(super) frame: Result<ClientFrame, ApiError>,
    pub(super) ack: AckSender,
}

/// How a connection ends.
enum End {
    /// The client left, or its socket is gone.
    Gone,
    /// Told why in an `error` event (when there is room for it), then disconnected.
    Disconnect(&'static str, &'static str),
    /// The client's buffer stayed full: disconnected without a word.
    TooSlow,
}

/// What woke the task.
enum Step {
    Stop,
    Gone,
    Session(SessionNotice),
    Recheck,
    UpgradeCheck,
    Expired,
    Command(Option<Box<Command>>),
    Event(Happening),
}

/// The acknowledgement of a refusal: `{ "error": { code, message, retryAfter? } }`.
pub(super) fn refusal(e: &ApiError) -> Value {
    let mut error = json!({ "code": e.code(), "message": e.message() });
    if let Some(secs) = e.retry_after_secs() {
        error["retryAfter"] = json!(secs);
    }
    json!({ "error": error })
}

/// Serves one connection until it ends; the connection's `guard` tells the shutdown.
pub(super) async fn run(
    socket: SocketRef,
    mut live: Live,
    mut commands: mpsc::Receiver<Box<Command>>,
    gone: Arc<Notify>,
    guard: SocketGuard,
) {
    let _guard = guard;
    let _open = crate::metrics::WsConnection::open(crate::metrics::transport::SOCKETIO);
    let settings = live.state().ws().clone();
    let stopping = live.state().shutdown().triggered();
    tokio::pin!(stopping);
    let recheck_every = settings.session_recheck.max(Duration::from_millis(10));
    let recheck = tokio::time::sleep(recheck_every);
    tokio::pin!(recheck);
    let far = Duration::from_secs(86_400 * 365);
    let expiry = tokio::time::sleep(live.expires_in().unwrap_or(far));
    tokio::pin!(expiry);
    let grace = settings.slow_consumer_grace;
    // A long-polling session's slot under the connection caps, given back once the
    // session has moved to a WebSocket (which holds its connection's slot). socketioxide
    // says nothing of an upgrade: look, soon and then less and less often, as clients
    // upgrade within moments of connecting or never.
    let slot = socket.req_parts().extensions.get::<super::Slot>().cloned();
    let mut upgrade_every = UPGRADE_CHECK_FIRST;
    let upgrade_check = tokio::time::sleep(upgrade_every);
    tokio::pin!(upgrade_check);

    let end = loop {
        let step = {
            let (session, rooms) = live.waits();
            tokio::select! {
                biased;
                () = &mut stopping => Step::Stop,
                () = gone.notified() => Step::Gone,
                notice = poll_fn(|cx| poll_session(session, cx)) => Step::Session(notice),
                () = &mut expiry => Step::Expired,
                () = &mut recheck => Step::Recheck,
                () = &mut upgrade_check, if slot.as_ref().is_some_and(super::Slot::held) => {
                    Step::UpgradeCheck
                }
                command = commands.recv() => Step::Command(command),
                happening = poll_fn(|cx| rooms.poll_event(cx)) => Step::Event(happening),
            }
        };
        match step {
            Step::Stop => break End::Disconnect("unavailable", "the server is shutting down"),
            Step::Gone | Step::Command(None) => break End::Gone,
            Step::Session(SessionNotice::Ended) => {
                break End::Disconnect(
                    "unauthorized",
                    "the session has ended (logged out, or the officer was disabled)",
                );
            }
            Step::Expired => {
                break End::Disconnect("unauthorized", "the session has expired; log in again");
            }
            Step::UpgradeCheck => {
                if socket.transport_type() == TransportType::Websocket {
                    if let Some(slot) = &slot {
                        slot.release();
                    }
                } else {
                    upgrade_every = (upgrade_every * 2).min(UPGRADE_CHECK_LAST);
                    upgrade_check.as_mut().reset(Instant::now() + upgrade_every);
                }
            }
            Step::Session(SessionNotice::Recheck) | Step::Recheck => {
                recheck.as_mut().reset(Instant::now() + recheck_every);
                if !live.recheck().await {
                    break End::Disconnect(
                        "unauthorized",
                        "the session has ended (logged out, expired or disabled)",
                    );
                }
            }
            Step::Command(Some(command)) => {
                let Command { frame, ack } = *command;
                let answer = match live.admit() {
                    Err(over) if over.close => {
                        let _ = ack.send(&refusal(&over.error));
                        break End::Disconnect("rate_limited", "frame rate limit exceeded");
                    }
                    Err(over) => refusal(&over.error),
                    Ok(()) => match frame {
                        Err(e) => refusal(&e),
                        Ok(frame) => match Box::pin(live.request(frame)).await {
                            Ok(Reply::Joined(_) | Reply::Left(_) | Reply::Done) => {
                                json!({ "ok": true })
                            }
                            Err(e) => refusal(&e),
                        },
                    },
                };
                match ack.send(&answer) {
                    Ok(()) => crate::metrics::ws_sent(crate::metrics::transport::SOCKETIO, 1),
                    Err(e) => match e {
                        SendError::Socket(SocketError::InternalChannelFull) => break End::TooSlow,
                        SendError::Socket(SocketError::Closed) => break End::Gone,
                        SendError::Serialize(e) => {
                            tracing::error!(error = ?e, "cannot encode an acknowledgement");
                        }
                    },
                }
            }
            Step::Event(happening) => {
                let sent = match happening {
                    Happening::Event(envelope) => {
                        let Ok(data) = serde_json::from_slice::<&RawValue>(envelope.json()) else {
                            tracing::error!("event JSON does not parse; dropped");
                            continue;
                        };
                        emit(&socket, envelope.event().kind(), data, grace).await
                    }
                    Happening::Lost(frame) => emit(&socket, "error", &frame, grace).await,
                    Happening::Failed => break End::Disconnect("internal", "server error"),
                    Happening::Lagged => break End::Disconnect("too_slow", "client too slow"),
                };
                if let Err(end) = sent {
                    break end;
                }
            }
        }
    };
    finish(socket, &mut live, end, &gone).await;
}

/// The kill switch of the connection a WebSocket session is on: the one it was upgraded
/// to, or the one of its handshake when that was a WebSocket's (never a long-polling
/// request's connection, which may serve other requests since).
fn websocket_kill(socket: &SocketRef) -> Option<Kill> {
    if socket.transport_type() != TransportType::Websocket {
        return None;
    }
    if let Some(super::Upgraded(kill)) = socket.extensions.get::<super::Upgraded>() {
        return Some(kill);
    }
    let handshake = socket.req_parts();
    let direct = handshake
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "transport=websocket"));
    direct
        .then(|| handshake.extensions.get::<Kill>().cloned())
        .flatten()
}

/// Emits an event, waiting up to `grace` for room in the client's buffer.
async fn emit<T: serde::Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    data: &T,
    grace: Duration,
) -> Result<(), End> {
    let deadline = Instant::now() + grace;
    loop {
        match socket.emit(event, data) {
            Ok(()) => {
                crate::metrics::ws_sent(crate::metrics::transport::SOCKETIO, 1);
                return Ok(());
            }
            Err(SendError::Socket(SocketError::Closed)) => return Err(End::Gone),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                if Instant::now() >= deadline {
                    return Err(End::TooSlow);
                }
                tokio::time::sleep(ROOM_CHECK).await;
            }
            Err(SendError::Serialize(e)) => {
                tracing::error!(error = ?e, event, "cannot encode an event; dropped");
                return Ok(());
            }
        }
    }
}

/// Ends a connection: leaves its rooms at once (nothing more is read for it), says why
/// when there is room, and disconnects it once its buffer has room for that.
async fn finish(socket: SocketRef, live: &mut Live, end: End, gone: &Notify) {
    live.leave_all();
    let role = live.actor().role();
    let subject = live.actor().subject().to_string();
    match end {
        End::Gone => return,
        End::Disconnect(code, message) => {
            if code != "unavailable" {
                tracing::info!(code, message, role, subject = %subject, "closing Socket.IO connection");
            }
            let frame = ServerFrame::Error(ErrorFrame::new(code, message));
            let _ = socket.emit("error", &frame);
        }
        End::TooSlow => {
            tracing::info!(role, subject = %subject, "Socket.IO client too slow; closing");
            // Its buffer is full, so no packet can say goodbye: a WebSocket's connection
            // is ended at once, as `/ws` drops its 4008 client. A long-polling client
            // that stopped polling is dropped by its next ping, which finds no room.
            if let Some(kill) = websocket_kill(&socket) {
                kill.kill();
            }
        }
    }
    // The disconnect is a packet too: it waits for room, or for the client to go.
    loop {
        match socket.clone().disconnect() {
            Err(SocketError::InternalChannelFull) => {}
            Ok(()) | Err(SocketError::Closed) => return,
        }
        tokio::select! {
            () = gone.notified() => return,
            () = tokio::time::sleep(ROOM_CHECK * 10) => {}
        }
    }
}
