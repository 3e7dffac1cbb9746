//! A WebSocket client for the contract's `/ws`: connect, authenticate with the first
//! frame, then send and receive JSON text frames. Used by `watch` and to learn who a token
//! belongs to. Reconnecting is the caller's business.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{ApiError, ExitKind};

/// How long the server gets to answer the auth frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Close code the contract uses for a refused token.
pub(crate) const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Who the server says the token is (the `ready` frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) role: String,
    pub(crate) subject: String,
}

/// What reading the socket gave.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A text frame: its text exactly as received and its parsed JSON.
    Json(String, Value),
    /// The connection ended, with the close code when the server sent one.
    Closed(Option<u16>),
}

/// An authenticated connection.
pub(crate) struct Connection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// `http://host:port` -> `ws://host:port/ws` (and https -> wss).
pub(crate) fn ws_url(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    format!("{rest}/ws")
}

impl Connection {
    /// Connects and authenticates. A refused token is an `unauthorized` [`ApiError`]
    /// (exit 5); a server that cannot be reached is `unreachable` (exit 6).
    pub(crate) async fn open(base: &str, token: &str) -> Result<(Self, Ready), ApiError> {
        let url = ws_url(base);
        let (stream, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| ApiError::unreachable(format!("cannot open a WebSocket to {url}: {e}")))?;
        let mut conn = Self { stream };
        conn.send(&json!({ "type": "auth", "token": token }))
            .await?;
        let ready = tokio::time::timeout(AUTH_TIMEOUT, conn.read_ready())
            .await
            .map_err(|_| ApiError::unreachable("the server did not answer the auth frame"))??;
        Ok((conn, ready))
    }

    async fn read_ready(&mut self) -> Result<Ready, ApiError> {
        loop {
            match self.next().await? {
                Frame::Json(_, v) => match v["type"].as_str() {
                    Some("ready") => {
                        return Ok(Ready {
                            role: v["role"].as_str().unwrap_or_default().to_string(),
                            subject: v["subject"].as_str().unwrap_or_default().to_string(),
                        });
                    }
                    Some("error") => return Err(error_frame(&v)),
                    _ => continue,
                },
                Frame::Closed(Some(CLOSE_UNAUTHORIZED)) => {
                    return Err(ApiError::from_ws_code("unauthorized", None));
                }
                Frame::Closed(code) => {
                    return Err(ApiError::unreachable(format!(
                        "the server closed the WebSocket during auth (code {code:?})"
                    )));
                }
            }
        }
    }

    /// Sends one JSON frame.
    pub(crate) async fn send(&mut self, frame: &Value) -> Result<(), ApiError> {
        self.stream
            .send(WsMessage::text(frame.to_string()))
            .await
            .map_err(|e| ApiError::unreachable(format!("WebSocket send failed: {e}")))
    }

    /// The next text frame, or the end of the connection. Pings are answered by the
    /// library while reading.
    pub(crate) async fn next(&mut self) -> Result<Frame, ApiError> {
        loop {
            let Some(msg) = self.stream.next().await else {
                return Ok(Frame::Closed(None));
            };
            match msg {
                Ok(WsMessage::Text(text)) => {
                    let text = text.as_str().to_string();
                    let value = serde_json::from_str(&text).map_err(|e| {
                        ApiError::new(
                            ExitKind::Other,
                            "bad_frame",
                            format!("the server sent a frame that is not JSON: {e}"),
                        )
                    })?;
                    return Ok(Frame::Json(text, value));
                }
                Ok(WsMessage::Close(frame)) => {
                    return Ok(Frame::Closed(frame.map(|f| u16::from(f.code))));
                }
                Ok(_) => continue,
                // A reset or a protocol error ends this connection like a close would.
                Err(_) => return Ok(Frame::Closed(None)),
            }
        }
    }

    /// Closes politely; errors are irrelevant at that point.
    pub(crate) async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// The [`ApiError`] of an `{"type":"error","code","message"}` frame.
pub(crate) fn error_frame(v: &Value) -> ApiError {
    ApiError::from_ws_code(v["code"].as_str().unwrap_or("error"), v["message"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_url("http://127.0.0.1:3000"), "ws://127.0.0.1:3000/ws");
        assert_eq!(ws_url("https://chat.example"), "wss://chat.example/ws");
    }
}
