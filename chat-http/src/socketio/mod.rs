//! Socket.IO at `/socket.io/` (Engine.IO v4, long-polling and WebSocket), on the
//! `socketioxide` crate: the second real-time transport, for clients of the original
//! Express + Socket.io design (docs/API.md, "Socket.IO"; docs/MIGRATING.md). It must not
//! decide anything nor hold rooms of its own: a connection's session, rooms, feeds and
//! budgets are the shared layer's (`crate::live`), exactly as on `/ws`, and socketioxide's
//! own rooms and adapters are not used (other nodes' events arrive through the engine's
//! bus, as on `/ws`).
//!
//! - The handshake's `auth: { token }` opens the session (a connect middleware): a bad
//!   token is refused with a `connect_error` whose message starts with `unauthorized`
//!   (`/ws`'s 4401), too many failed tokens from the address with `rate_limited`.
//! - `join_chat` (`{ chatId, afterSeq? }`, or the plain chat id the old clients sent),
//!   `join_officers`, `leave_chat` (`{ chatId }` or the id), `typing` (likewise) and
//!   `read` (`{ chatId, seq }`) become the shared layer's requests, in the order they
//!   arrive, each acknowledged with `{ "ok": true }` or `{ "error": { code, message } }`
//!   (plus `retryAfter` for a rate limit).
//! - A session counts under the connection caps (`conn::Caps`, per address and in all)
//!   for as long as it lives: on a WebSocket it is its connection; on long-polling,
//!   which holds no connection between requests, its handshake takes a [`Slot`] that
//!   socketioxide keeps with the session, given back when it ends or is upgraded. Over
//!   the address's cap the handshake is a 429 `rate_limited`, over the server's a 503
//!   `unavailable`.
//! - Every event of the joined rooms is emitted under its `type` as the event name, its
//!   payload the same JSON object `/ws` sends (with its `type`); a chat the reader may no
//!   longer read is left with an `error` event, as `/ws`'s `error` frame.
//!
//! Files: this one holds the endpoint and the handlers; `conn` one connection's task.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatcore::wire::ClientFrame;
use serde::Deserialize;
use serde_json::{Map, Value};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, TransportType};
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

use crate::conn::{Kill, Permit, Refused as Full};
use crate::error::ApiError;
use crate::extract::{AllowedOrigin, ClientIp};
use crate::live::{Live, Refused};
use crate::state::AppState;

mod conn;

use conn::Command;

/// The client events, each a request of the shared layer.
const EVENTS: [&str; 5] = ["join_chat", "join_officers", "leave_chat", "typing", "read"];

/// Client events a connection holds before its task takes them; one more is refused
/// with `rate_limited` at once.
const COMMANDS_QUEUED: usize = 16;

/// Packets queued for one client in socketioxide's own buffer (events, acks). A client
/// that lets it fill up for `WsSettings::slow_consumer_grace` is disconnected.
const PACKETS_QUEUED: usize = 128;

pub(crate) fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(engine_get))
        .routes(utoipa_axum::routes!(engine_post))
}

/// The Socket.IO server of one router: socketioxide's service, which the endpoint hands
/// every request of `/socket.io/` to.
#[derive(Clone)]
pub(crate) struct Endpoint {
    service: BoxCloneSyncService<Request, Response, ()>,
    io: SocketIo,
}

impl Endpoint {
    /// Socket.IO over `state`, with `/ws`'s timings and limits.
    pub(crate) fn new(state: &AppState) -> Self {
        let ws = state.ws();
        let max = ws.max_message_bytes;
        let (service, io) = SocketIo::builder()
            .ping_interval(ws.ping_interval)
            // Engine.IO drops a peer silent for its ping interval plus this: about two
            // intervals, as `/ws`.
            .ping_timeout(ws.ping_interval)
            // The handshake must join the namespace (with its token) as soon as `/ws`'s
            // `auth` frame must arrive.
            .connect_timeout(ws.auth_timeout)
            .max_payload(u64::try_from(max).unwrap_or(u64::MAX))
            .ws_max_message_size(max)
            .ws_max_frame_size(max)
            .ws_read_buffer_size(ws.read_buffer_bytes)
            .max_buffer_size(PACKETS_QUEUED)
            .transports([TransportType::Polling, TransportType::Websocket])
            .build_svc();
        let handshake = {
            let state = state.clone();
            move |s: SocketRef, TryData(auth): TryData<Handshake>| {
                let state = state.clone();
                async move { authenticate(state, s, auth.ok()).await }
            }
        };
        let on_connect = {
            let state = state.clone();
            move |s: SocketRef| {
                connected(&state, s);
                std::future::ready(())
            }
        };
        io.ns("/", on_connect.with(handshake));
        Self {
            service: boxed(service),
            io,
        }
    }
}

/// socketioxide's service with axum's body, its failures logged (it has none in practice).
fn boxed<S, B>(service: S) -> BoxCloneSyncService<Request, Response, ()>
where
    S: tower::Service<Request, Response = axum::http::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    BoxCloneSyncService::new(
        service
            .map_response(|response| response.map(axum::body::Body::new))
            .map_err(|e| tracing::error!(error = ?e, "Socket.IO service failed")),
    )
}

/// The handshake's `auth` payload.
#[derive(Deserialize)]
struct Handshake {
    token: Option<String>,
}

/// The client's address, for the per-address limits, carried to the handshake in the
/// request's extensions.
#[derive(Clone, Copy)]
struct ClientAddr(Option<IpAddr>);

/// A long-polling session's slot under the connection caps, in its handshake request's
/// extensions, which its Engine.IO session keeps until it ends (a close, a ping timeout,
/// a handshake that never joined the namespace, the shutdown): the slot goes back when
/// the session is dropped. An upgraded session gives it back at once (`conn`), its
/// WebSocket's connection holding one of its own.
#[derive(Clone)]
pub(crate) struct Slot(Arc<Mutex<Option<Permit>>>);

impl Slot {
    fn new(permit: Permit) -> Self {
        Self(Arc::new(Mutex::new(Some(permit))))
    }

    /// Whether it still holds its slot.
    pub(crate) fn held(&self) -> bool {
        self.0.lock().is_ok_and(|p| p.is_some())
    }

    /// Gives the slot back now.
    pub(crate) fn release(&self) {
        let permit = self.0.lock().ok().and_then(|mut p| p.take());
        drop(permit);
    }
}

/// The session the handshake opened, for the connect handler to take.
#[derive(Clone)]
struct Opened(Arc<Mutex<Option<Live>>>);

/// Why a handshake was refused: the `connect_error`'s message, its code first.
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The connect middleware: opens the session of the handshake's token.
async fn authenticate(
    state: AppState,
    s: SocketRef,
    auth: Option<Handshake>,
) -> Result<(), Refusal> {
    let client = s
        .req_parts()
        .extensions
        .get::<ClientAddr>()
        .and_then(|c| c.0);
    let token = auth.and_then(|a| a.token).unwrap_or_default();
    let mut live = Live::new(state);
    match live.open(&token, client).await {
        Ok(_ready) => {
            tracing::debug!(
                role = live.actor().role(),
                subject = live.actor().subject(),
                "Socket.IO authenticated"
            );
            s.extensions
                .insert(Opened(Arc::new(Mutex::new(Some(live)))));
            Ok(())
        }
        Err(Refused::Unauthorized) => Err(Refusal(
            "unauthorized: the token is unknown, revoked or expired; connect with auth: { token }"
                .into(),
        )),
        Err(Refused::Limited(e) | Refused::Failed(e)) => {
            let retry = e
                .retry_after_secs()
                .map(|secs| format!(" (retry after {secs} s)"))
                .unwrap_or_default();
            Err(Refusal(format!("{}: {}{retry}", e.code(), e.message())))
        }
    }
}

/// The connect handler: the client's events go to the connection's task, in order
/// (handlers run on the receiving path before anything is spawned).
fn connected(state: &AppState, s: SocketRef) {
    let Some(live) = s
        .extensions
        .remove::<Opened>()
        .and_then(|opened| opened.0.lock().ok().and_then(|mut l| l.take()))
    else {
        tracing::error!("Socket.IO connection without its session");
        let _ = s.disconnect();
        return;
    };
    let (commands, queue) = mpsc::channel(COMMANDS_QUEUED);
    let gone = Arc::new(tokio::sync::Notify::new());
    let on_event = {
        let commands = commands.clone();
        move |Event(event): Event, TryData(data): TryData<Value>, ack: AckSender| {
            let frame = to_frame(&event, data.unwrap_or(Value::Null));
            submit(&commands, Box::new(Command { frame, ack }));
            std::future::ready(())
        }
    };
    for event in EVENTS {
        s.on(event, on_event.clone());
    }
    s.on_fallback({
        let commands = commands.clone();
        move |Event(event): Event, ack: AckSender| {
            let frame = Err(invalid_frame(format!(
                "unknown event {event:?}: the events are {}",
                EVENTS.join(", ")
            )));
            submit(&commands, Box::new(Command { frame, ack }));
            std::future::ready(())
        }
    });
    s.on_disconnect({
        let gone = gone.clone();
        move || {
            gone.notify_one();
            std::future::ready(())
        }
    });
    let guard = state.shutdown().socket_guard();
    tokio::spawn(conn::run(s, live, queue, gone, guard));
}

/// Queues a client event for the connection's task; over the queue, it is refused at once.
/// Boxed: the channel's first block of slots is allocated with it, for every idle socket.
fn submit(commands: &mpsc::Sender<Box<Command>>, command: Box<Command>) {
    match commands.try_send(command) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(command)) => {
            let e = ApiError::transport(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many events at once; wait for the acknowledgements",
            );
            let _ = command.ack.send(&conn::refusal(&e));
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// A client event as the shared layer's request: `{ ... }` with the event as its
/// `type`, or a plain chat id for the events that take one.
fn to_frame(event: &str, data: Value) -> Result<ClientFrame, ApiError> {
    let mut object = match data {
        Value::Object(map) => map,
        Value::String(chat) if event != "read" => {
            let mut map = Map::new();
            map.insert("chatId".into(), Value::String(chat));
            map
        }
        Value::Null => Map::new(),
        _ => {
            return Err(invalid_frame(format!(
                "{event} takes an object{}",
                if event == "read" { "" } else { " or a chat id" }
            )));
        }
    };
    object.insert("type".into(), Value::String(event.into()));
    serde_json::from_value(Value::Object(object))
        .map_err(|e| invalid_frame(format!("not a valid {event}: {e}")))
}

fn invalid_frame(message: String) -> ApiError {
    ApiError::transport(StatusCode::BAD_REQUEST, "invalid_frame", message)
}

/// Socket.IO's long-polling reads and WebSocket upgrades.
#[utoipa::path(get, path = "/socket.io/", tag = "socketio",
    params(
        ("EIO" = String, Query, description = "Engine.IO protocol version: 4"),
        ("transport" = String, Query, description = "`polling` or `websocket`"),
        ("sid" = Option<String>, Query, description = "the Engine.IO session, after the handshake"),
    ),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol (`transport=websocket`)"),
        (status = 200, description = "Engine.IO packets (the handshake, or what waited for the client)"),
        (status = 400, description = "not an Engine.IO request (socketioxide's own answer)"),
        (status = 403, description = "`origin_not_allowed`", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`: new connections per address, or a long-polling handshake over the address's connection cap", body = crate::openapi::ErrorBody),
        (status = 503, description = "`unavailable`: a long-polling handshake over the server's connection cap, or the server is shutting down", body = crate::openapi::ErrorBody),
    ))]
async fn engine_get(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    _origin: AllowedOrigin,
    Extension(endpoint): Extension<Endpoint>,
    req: Request,
) -> Response {
    serve(&state, client, endpoint, req).await
}

/// Socket.IO's long-polling writes: the client's packets.
#[utoipa::path(post, path = "/socket.io/", tag = "socketio",
    params(
        ("EIO" = String, Query, description = "Engine.IO protocol version: 4"),
        ("transport" = String, Query, description = "`polling`"),
        ("sid" = String, Query, description = "the Engine.IO session"),
    ),
    responses(
        (status = 200, description = "`ok`: the packets were taken"),
        (status = 400, description = "not an Engine.IO request, or an unknown session (socketioxide's own answer)"),
        (status = 403, description = "`origin_not_allowed`", body = crate::openapi::ErrorBody),
        (status = 413, description = "over the payload limit"),
    ))]
async fn engine_post(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    _origin: AllowedOrigin,
    Extension(endpoint): Extension<Endpoint>,
    req: Request,
) -> Response {
    serve(&state, client, endpoint, req).await
}

/// Hands a request to socketioxide, after the limits `/ws` applies to a new connection.
async fn serve(
    state: &AppState,
    client: Option<IpAddr>,
    endpoint: Endpoint,
    mut req: Request,
) -> Response {
    let session = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("sid=")))
        .map(str::to_owned);
    if let Some(sid) = session {
        if transport_of(&req) == Some(TransportType::Websocket) {
            upgrading(&endpoint.io, &sid, &req);
        }
    } else {
        if state.shutdown().is_triggered() {
            return ApiError::transport(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            )
            .into_response();
        }
        // New connections per client address, as `/ws` counts them.
        if let Err(e) = state.limits().ws_connect(client) {
            return e.into_response();
        }
        // A long-polling session holds a connection's slot until it ends; a WebSocket
        // one is its connection, which holds its own.
        if transport_of(&req) != Some(TransportType::Websocket) {
            match state.caps().admit_from(client) {
                Ok(permit) => {
                    req.extensions_mut().insert(Slot::new(permit));
                }
                Err(refused) => return over_cap(refused, client).into_response(),
            }
        }
    }
    req.extensions_mut().insert(ClientAddr(client));
    match endpoint.service.oneshot(req).await {
        Ok(response) => response,
        Err(()) => ApiError::transport(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
        .into_response(),
    }
}

/// A session's upgrade to a WebSocket: the socket learns the kill switch of the
/// connection it moves to, so that a client that stops reading it can be dropped
/// (`conn`). A session not yet joined to the namespace learns nothing: it would then
/// be dropped by its next ping instead.
fn upgrading(io: &SocketIo, sid: &str, req: &Request) {
    let (Ok(sid), Some(kill)) = (sid.parse(), req.extensions().get::<Kill>()) else {
        return;
    };
    // Only while it is still on long-polling: a second upgrade request (socketioxide
    // refuses it) must not replace the WebSocket's own.
    if let Some(socket) = io.get_socket(sid)
        && socket.transport_type() == TransportType::Polling
    {
        socket.extensions.insert(Upgraded(kill.clone()));
    }
}

/// The connection an upgraded session's WebSocket is on, as its kill switch.
#[derive(Clone)]
pub(crate) struct Upgraded(pub(crate) Kill);

/// The Engine.IO transport a request names (`transport=`), if it names a known one.
fn transport_of(req: &Request) -> Option<TransportType> {
    req.uri().query()?.split('&').find_map(|pair| match pair {
        "transport=polling" => Some(TransportType::Polling),
        "transport=websocket" => Some(TransportType::Websocket),
        _ => None,
    })
}

/// The answer to a handshake over the connection caps: the address's cap is the
/// client's own limit (429 `rate_limited`, as `/ws`'s connection rate), the server's is
/// not (503 `unavailable`). Logged at debug: any client can cause as many as it likes,
/// and the accept loop already logs its own refusals, at most every 10 s.
fn over_cap(refused: Full, client: Option<IpAddr>) -> ApiError {
    tracing::debug!(
        ?refused,
        ?client,
        "Socket.IO session refused over the connection caps"
    );
    match refused {
        Full::Address => ApiError::from(chatcore::Error::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        }),
        Full::Server => ApiError::transport(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server holds as many connections as it may; retry later",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn events_become_the_frames_of_ws() {
        let join = |data| to_frame("join_chat", data).unwrap();
        let plain = ClientFrame::JoinChat {
            chat_id: CHAT.into(),
            after_seq: None,
        };
        assert_eq!(join(Value::String(CHAT.into())), plain);
        assert_eq!(join(serde_json::json!({ "chatId": CHAT })), plain);
        assert_eq!(
            join(serde_json::json!({ "chatId": CHAT, "afterSeq": 7 })),
            ClientFrame::JoinChat {
                chat_id: CHAT.into(),
                after_seq: Some(7)
            }
        );
        assert_eq!(
            to_frame("join_officers", Value::Null).unwrap(),
            ClientFrame::JoinOfficers
        );
        assert_eq!(
            to_frame("read", serde_json::json!({ "chatId": CHAT, "seq": 3 })).unwrap(),
            ClientFrame::Read {
                chat_id: CHAT.into(),
                seq: 3
            }
        );
        // The event's name wins over a `type` in the payload.
        assert_eq!(
            to_frame(
                "typing",
                serde_json::json!({ "type": "auth", "chatId": CHAT })
            )
            .unwrap(),
            ClientFrame::Typing {
                chat_id: CHAT.into()
            }
        );
    }

    #[test]
    fn malformed_payloads_are_invalid_frames() {
        for (event, data) in [
            ("read", Value::String(CHAT.into())),
            ("read", serde_json::json!({ "chatId": CHAT })),
            ("join_chat", Value::Null),
            ("join_chat", serde_json::json!([CHAT])),
            (
                "join_chat",
                serde_json::json!({ "chatId": CHAT, "afterSeq": "x" }),
            ),
        ] {
            let e = to_frame(event, data.clone()).unwrap_err();
            assert_eq!(e.code(), "invalid_frame", "{event} {data}");
        }
    }
}
