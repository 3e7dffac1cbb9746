//! [`Socket`]: one authenticated connection to the contract's `/ws` (docs/API.md,
//! "WebSocket"). It sends [`ClientFrame`]s and reads [`ServerFrame`]s; a join waits for
//! its answer and keeps the events that arrive meanwhile for [`Socket::next`].
//! Reconnecting is [`crate::Watch`]'s business.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chatcore::wire::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::{ApiError, Error};

/// How long the server gets to answer `auth` and a join.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Who the server says the token is (the `ready` frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `officer`, `customer` or `admin`.
    pub role: String,
    /// The officer's or customer's id (`admin` for the admin).
    pub subject: String,
}

/// A frame from the server: parsed, and its text exactly as received (to pass on
/// unchanged, as `chat-cli watch --json` does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The frame.
    pub frame: ServerFrame,
    /// Its JSON text.
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct SocketOptions {
    pub(crate) small_buffers: bool,
}

impl SocketOptions {
    fn config(&self) -> Option<WebSocketConfig> {
        // The defaults (128 KiB each) would cost a load tool gigabytes at 15,000 sockets.
        self.small_buffers.then(|| {
            WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(0)
        })
    }
}

/// `http://host:port` -> `ws://host:port/ws` (and https -> wss).
pub fn ws_url(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    format!("{rest}/ws")
}

/// An authenticated WebSocket.
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    identity: Identity,
    /// Frames read while waiting for a join's answer, handed out first by `next`.
    pending: VecDeque<Incoming>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// Connects to `base`'s `/ws` and authenticates with `token`. A refused token is
    /// [`Error::Api`] `unauthorized` (or [`Error::Closed`] 4401).
    pub(crate) async fn open(
        base: &str,
        token: &str,
        options: &SocketOptions,
        tls: &Arc<ClientConfig>,
    ) -> Result<Self, Error> {
        let url = ws_url(base);
        // The connector is used for `wss` only; `ws` stays plain.
        let (stream, _) = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            options.config(),
            true,
            Some(Connector::Rustls(tls.clone())),
        )
        .await
        .map_err(|e| match crate::tls::failure(&e) {
            Some(reason) => Error::Tls {
                url: url.clone(),
                reason,
            },
            None => Error::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            },
        })?;
        let mut socket = Self {
            stream,
            identity: Identity {
                role: String::new(),
                subject: String::new(),
            },
            pending: VecDeque::new(),
        };
        socket
            .send(&ClientFrame::Auth {
                token: token.to_string(),
            })
            .await?;
        socket.identity = socket
            .answer(|frame| match frame {
                ServerFrame::Ready { role, subject } => Some(Identity {
                    role: role.clone(),
                    subject: subject.clone(),
                }),
                _ => None,
            })
            .await?;
        Ok(socket)
    }

    /// Who the server says the token is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), Error> {
        let text = serde_json::to_string(frame).map_err(|e| Error::BadResponse {
            url: "/ws".into(),
            reason: e.to_string(),
        })?;
        self.send_text(text).await
    }

    /// Sends a text frame as it is (for testing what a server does with any text).
    pub async fn send_text(&mut self, text: String) -> Result<(), Error> {
        self.stream
            .send(WsMessage::text(text))
            .await
            .map_err(|e| Error::Unreachable {
                url: "/ws".into(),
                reason: format!("WebSocket send failed: {e}"),
            })
    }

    /// Joins a chat's room and waits for `joined`; with `after_seq`, every stored
    /// message after it follows (then live ones, no gap, no duplicate). A refusal is
    /// [`Error::Api`] with the contract's code.
    pub async fn join_chat(&mut self, chat: &str, after_seq: Option<u64>) -> Result<(), Error> {
        let room = format!("chat:{chat}");
        self.send(&ClientFrame::JoinChat {
            chat_id: chat.to_string(),
            after_seq,
        })
        .await?;
        self.joined(&room).await
    }

    /// Joins the shared queue (`officers:all`) and waits for `joined`.
    pub async fn join_officers(&mut self) -> Result<(), Error> {
        self.send(&ClientFrame::JoinOfficers).await?;
        self.joined("officers:all").await
    }

    /// Leaves a chat's room (no more of its events after `left`).
    pub async fn leave_chat(&mut self, chat: &str) -> Result<(), Error> {
        let room = format!("chat:{chat}");
        self.send(&ClientFrame::LeaveChat {
            chat_id: chat.to_string(),
        })
        .await?;
        self.answer(|frame| {
            matches!(frame, ServerFrame::Left { room: r } if *r == room).then_some(())
        })
        .await
    }

    /// Tells the chat's other side that this socket's user is typing (nothing is
    /// answered; a refusal comes as an `error` frame).
    pub async fn typing(&mut self, chat: &str) -> Result<(), Error> {
        self.send(&ClientFrame::Typing {
            chat_id: chat.to_string(),
        })
        .await
    }

    /// Moves this socket's user's read mark of a chat to `seq` (nothing is answered; the
    /// room hears `read`).
    pub async fn mark_read(&mut self, chat: &str, seq: u64) -> Result<(), Error> {
        self.send(&ClientFrame::Read {
            chat_id: chat.to_string(),
            seq,
        })
        .await
    }

    async fn joined(&mut self, room: &str) -> Result<(), Error> {
        self.answer(|frame| {
            matches!(frame, ServerFrame::Joined { room: r } if r == room).then_some(())
        })
        .await
    }

    /// Reads until `wanted` picks a frame or an error frame refuses; other frames are
    /// kept for `next`.
    async fn answer<T>(&mut self, wanted: impl Fn(&ServerFrame) -> Option<T>) -> Result<T, Error> {
        let wait = async {
            loop {
                let incoming = self.read().await?;
                if let Some(found) = wanted(&incoming.frame) {
                    return Ok(found);
                }
                match incoming.frame {
                    // An error frame about a room (a right that ended) is an event of
                    // that room, not this request's answer.
                    ServerFrame::Error(e) if e.room.is_none() => {
                        return Err(Error::Api(ApiError::from_frame(e)));
                    }
                    _ => self.pending.push_back(incoming),
                }
            }
        };
        tokio::time::timeout(ANSWER_TIMEOUT, wait)
            .await
            .map_err(|_| Error::Unreachable {
                url: "/ws".into(),
                reason: format!("no answer within {ANSWER_TIMEOUT:?}"),
            })?
    }

    /// The next frame from the server; [`Error::Closed`] once the connection has ended.
    /// Pings are answered while reading.
    pub async fn next(&mut self) -> Result<Incoming, Error> {
        if let Some(incoming) = self.pending.pop_front() {
            return Ok(incoming);
        }
        self.read().await
    }

    /// The next text frame exactly as received, not parsed (frames kept while a join
    /// waited come first): for a reader that needs only a field or two of each frame and
    /// counts its cost, such as a load tool. [`Error::Closed`] once the connection ended.
    pub async fn next_text(&mut self) -> Result<String, Error> {
        if let Some(incoming) = self.pending.pop_front() {
            return Ok(incoming.text);
        }
        loop {
            match self.read_message().await? {
                WsMessage::Text(text) => return Ok(text.as_str().to_string()),
                _ => continue,
            }
        }
    }

    /// The next data or close message; the end of the stream and read errors are
    /// [`Error::Closed`], a close frame too.
    async fn read_message(&mut self) -> Result<WsMessage, Error> {
        match self.stream.next().await {
            // A reset or a protocol error ends the connection as a close would.
            None | Some(Err(_)) => Err(Error::Closed { code: None }),
            Some(Ok(WsMessage::Close(frame))) => Err(Error::Closed {
                code: frame.map(|f| u16::from(f.code)),
            }),
            Some(Ok(message)) => Ok(message),
        }
    }

    async fn read(&mut self) -> Result<Incoming, Error> {
        loop {
            let WsMessage::Text(text) = self.read_message().await? else {
                continue;
            };
            let text = text.as_str();
            match serde_json::from_str::<ServerFrame>(text) {
                Ok(frame) => {
                    return Ok(Incoming {
                        frame,
                        text: text.to_string(),
                    });
                }
                // A frame of a kind this client does not know (a newer server): skipped,
                // as unknown fields are.
                Err(_) if is_unknown_kind(text) => continue,
                Err(e) => {
                    return Err(Error::BadResponse {
                        url: "/ws".into(),
                        reason: format!("a frame that is not the contract's: {e}"),
                    });
                }
            }
        }
    }

    /// Closes politely; errors no longer matter then.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// Whether `text` is a JSON object whose `type` is not one this client knows.
fn is_unknown_kind(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["type"].as_str().map(|t| !ServerFrame::is_known_type(t)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_become_ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:3001"), "ws://127.0.0.1:3001/ws");
        assert_eq!(ws_url("https://chat.example"), "wss://chat.example/ws");
    }

    #[test]
    fn only_unknown_kinds_are_skipped() {
        assert!(is_unknown_kind(r#"{"type":"reaction","chatId":"x"}"#));
        assert!(!is_unknown_kind(r#"{"type":"new_message","message":7}"#));
        assert!(!is_unknown_kind("not json"));
    }
}
