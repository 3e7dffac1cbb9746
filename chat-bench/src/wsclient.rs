//! The WebSocket client side of the contract's `/ws`: connect (with small buffers, so
//! that thousands of sockets fit in the load tool), authenticate with the first frame,
//! join a chat, read JSON frames. Measuring is the scenarios' business.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long the server gets to answer `auth` and `join_chat`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// `http://host:port` -> `ws://host:port/ws`.
pub(crate) fn ws_url(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    format!("{rest}/ws")
}

/// The client's buffers: the defaults (128 KiB each) would cost the load tool gigabytes
/// at 15,000 sockets; the frames here are small.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Connects, authenticates and, when `chat` is given, joins that chat (without
/// `afterSeq`: only messages stored from now on). Returns once `joined` has arrived.
pub(crate) async fn open(url: &str, token: &str, chat: Option<&str>) -> anyhow::Result<Socket> {
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config()), true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    send_json(&mut socket, &json!({ "type": "auth", "token": token })).await?;
    expect_frame(&mut socket, "ready").await?;
    if let Some(chat) = chat {
        send_json(&mut socket, &json!({ "type": "join_chat", "chatId": chat })).await?;
        expect_frame(&mut socket, "joined").await?;
    }
    Ok(socket)
}

async fn send_json(socket: &mut Socket, value: &Value) -> anyhow::Result<()> {
    socket
        .send(Message::text(value.to_string()))
        .await
        .context("sending a frame")
}

/// Waits for a frame of `kind`; an error frame or the end of the connection fails.
async fn expect_frame(socket: &mut Socket, kind: &str) -> anyhow::Result<()> {
    let wait = async {
        loop {
            let Some(frame) = next_json(socket).await? else {
                bail!("the connection ended while waiting for {kind}");
            };
            match frame["type"].as_str() {
                Some(t) if t == kind => return Ok(()),
                Some("error") => bail!("the server refused: {frame}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(ANSWER_TIMEOUT, wait)
        .await
        .map_err(|_| anyhow!("no {kind} frame within {ANSWER_TIMEOUT:?}"))?
}

/// The next text frame as JSON; `None` when the connection has ended. Pings are answered
/// by the library while reading.
pub(crate) async fn next_json(socket: &mut Socket) -> anyhow::Result<Option<Value>> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str())
                    .map(Some)
                    .context("a text frame that is not JSON");
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("reading the socket"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_become_ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:3001"), "ws://127.0.0.1:3001/ws");
        assert_eq!(ws_url("https://chat.example"), "wss://chat.example/ws");
    }
}
