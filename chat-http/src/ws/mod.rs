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
//! to the socket, in order, with the events that already wait (up to 16) in the same
//! write; a write the client does not take within
//! `WsSettings::slow_consumer_grace` closes the connection with 4008. While a send
//! waits, nothing else is read or polled: the bus holds the rooms' events, a chat feed
//! that lagged reads the gap from the store, and an `officers:all` subscription that
//! lagged closes with 4008. An idle connection holds its task, its socket and one
//! boxed wait per joined room.
//!
//! Abuse limits (settings in `limits`): new connections per client address (429 before
//! the upgrade), frames per connection (error frames, then 1008) and rooms per connection
//! (`too_many_rooms`).
//!
//! Files: this one holds the endpoint (the upgrade), the close handshake and the writes;
//! `conn` one connection's loop (authentication, timers, client frames). The session,
//! the joined rooms, their feeds and the budgets are the shared layer's (`crate::live`),
//! which Socket.IO (`crate::socketio`) uses alike.

use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use chatcore::Actor;
use futures_util::{SinkExt, StreamExt};
use tracing::Instrument;

use crate::error::ApiError;
use crate::extract::{AllowedOrigin, ClientIp};
use crate::state::AppState;

mod conn;

use conn::Conn;

/// Close code: no valid `auth` frame in time, or the session ended (logout, expiry, the
/// officer disabled); also the client does not read fast enough (or fell behind the
/// queue's events). The protocol's own codes, spelt in `chatcore::wire`.
pub use chatcore::wire::{CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED};
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

pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(upgrade))
}

/// The WebSocket endpoint (docs/API.md, "WebSocket"): an upgrade, then an `auth` frame.
#[utoipa::path(get, path = "/ws", tag = "websocket",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`websocket_required`: not an upgrade request", body = crate::openapi::ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`", body = crate::openapi::ErrorBody),
    ))]
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
    // Boxed until the `auth` frame has been judged, then freed: an idle connection's
    // future keeps a pointer, not the address.
    let client = client.map(Box::new);
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

async fn run(mut socket: Box<WebSocket>, state: AppState, client: Option<Box<IpAddr>>) {
    let _open = crate::metrics::WsConnection::open(crate::metrics::transport::WS);
    let mut conn = Conn {
        live: crate::live::Live::new(state),
        client,
        out: Vec::new(),
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

/// Sends the frames in order, flushed once (and frees the list). A close ends the
/// connection after the frames before it; so does a batch the client does not take
/// within `grace` (4008), a failed send, or the shutdown (1001).
async fn send_all(
    socket: &mut WebSocket,
    out: &mut Vec<Out>,
    grace: Duration,
    stopping: &mut Pin<&mut impl Future<Output = ()>>,
) -> Option<Ending> {
    // Every frame is written, then flushed once: one write for a burst of events.
    let mut ending = None;
    let frames = std::mem::take(out);
    let batch = async {
        for item in frames {
            match item {
                Out::Frame(frame) => {
                    // Counted as it is handed over: the write may reach the client
                    // before this task runs again.
                    crate::metrics::ws_sent(crate::metrics::transport::WS, 1);
                    socket.feed(frame).await?;
                }
                Out::Close(code, reason) => {
                    ending = Some(Ending::Close((code, reason)));
                    break;
                }
            }
        }
        socket.flush().await
    };
    let sent = tokio::select! {
        biased;
        () = stopping.as_mut() => return Some(Ending::Close((CLOSE_GOING_AWAY, "server shutting down"))),
        sent = tokio::time::timeout(grace, batch) => sent,
    };
    match sent {
        Ok(Ok(())) => ending,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "send failed");
            Some(Ending::Drop)
        }
        Err(_elapsed) => Some(Ending::Close((CLOSE_TOO_SLOW, "client too slow"))),
    }
}

/// Whether a read failed because the client's frame or message was over the limit.
fn is_too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}
